package hub

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// The hub's log lines are throttled per level and message: within each
// logInterval, logBurst lines of each pass, and one summary line reports
// how many more were suppressed. A peer sending bad messages by the
// thousand (forged, malformed, replayed, unknown types, oversize) thus
// costs a few lines a second; Stats still counts every one.
const (
	logBurst    = 10
	logInterval = time.Second
)

// throttle is a slog.Handler that passes records at Info and above
// through its limiter; Debug records, asked for explicitly, all pass.
// Handlers derived by WithAttrs and WithGroup share the limiter.
type throttle struct {
	next slog.Handler
	l    *limiter
}

func newThrottle(next slog.Handler, l *limiter) *throttle {
	return &throttle{next: next, l: l}
}

func (t *throttle) Enabled(ctx context.Context, level slog.Level) bool {
	return t.next.Enabled(ctx, level)
}

func (t *throttle) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo && !t.l.allow(t.next, r.Level, r.Message) {
		return nil
	}
	return t.next.Handle(ctx, r)
}

func (t *throttle) WithAttrs(as []slog.Attr) slog.Handler {
	return newThrottle(t.next.WithAttrs(as), t.l)
}

func (t *throttle) WithGroup(name string) slog.Handler {
	return newThrottle(t.next.WithGroup(name), t.l)
}

// limiter counts log lines per key in windows of every. Its clock is
// injected so tests are deterministic: now reads it, and after(d, f)
// runs f once d has passed on it. It is safe for concurrent use.
type limiter struct {
	burst int
	every time.Duration
	now   func() time.Time
	after func(d time.Duration, f func())

	mu   sync.Mutex // guards keys and every window
	keys map[logKey]*window
}

type logKey struct {
	level slog.Level
	msg   string
}

// window is the current interval of one key.
type window struct {
	start      time.Time
	gen        uint64       // incremented at each new window: stale flushes do nothing
	passed     int          // lines passed in this window
	suppressed int          // lines suppressed in this window
	h          slog.Handler // handler of the last suppressed line: the summary's
}

func newLimiter(burst int, every time.Duration) *limiter {
	return &limiter{
		burst: burst,
		every: every,
		now:   time.Now,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		keys:  map[logKey]*window{},
	}
}

// allow reports whether a line of level and msg, about to go to h, may
// pass. The first suppressed line of a window schedules the window's
// summary at its end.
func (l *limiter) allow(h slog.Handler, level slog.Level, msg string) bool {
	k := logKey{level, msg}
	now := l.now()
	l.mu.Lock()
	w := l.keys[k]
	if w == nil {
		w = &window{start: now}
		l.keys[k] = w
	}
	var sum func()
	if now.Sub(w.start) >= l.every { // the flush is late or not needed
		sum = l.rollLocked(k, w, now)
	}
	ok := w.passed < l.burst
	if ok {
		w.passed++
	} else {
		if w.suppressed == 0 {
			gen := w.gen
			l.after(w.start.Add(l.every).Sub(now), func() { l.flush(k, gen) })
		}
		w.suppressed++
		w.h = h
	}
	l.mu.Unlock()
	if sum != nil {
		sum()
	}
	return ok
}

// flush ends window gen of k, if it is still the current one.
func (l *limiter) flush(k logKey, gen uint64) {
	l.mu.Lock()
	w := l.keys[k]
	var sum func()
	if w.gen == gen {
		sum = l.rollLocked(k, w, l.now())
	}
	l.mu.Unlock()
	if sum != nil {
		sum()
	}
}

// flushAll ends every window now, emitting the summaries due, so that
// none is left for a timer after the hub stopped.
func (l *limiter) flushAll() {
	now := l.now()
	var sums []func()
	l.mu.Lock()
	for k, w := range l.keys {
		if sum := l.rollLocked(k, w, now); sum != nil {
			sums = append(sums, sum)
		}
	}
	l.mu.Unlock()
	for _, sum := range sums {
		sum()
	}
}

// rollLocked starts a new window for k at now, and returns the summary of
// the old one to emit once l.mu is released, or nil if it suppressed
// nothing.
func (l *limiter) rollLocked(k logKey, w *window, now time.Time) func() {
	n, h := w.suppressed, w.h
	*w = window{start: now, gen: w.gen + 1}
	if n == 0 {
		return nil
	}
	return func() {
		r := slog.NewRecord(now, k.level, "suppressed repeated log lines", 0)
		r.AddAttrs(slog.String("log_message", k.msg), slog.Int("suppressed", n), slog.Duration("interval", l.every))
		_ = h.Handle(context.Background(), r)
	}
}
