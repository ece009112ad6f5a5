package hub

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb/dictdb"
)

// fakeClock drives a limiter: advance moves time and runs the timers due.
type fakeClock struct {
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func (c *fakeClock) install(l *limiter) {
	l.now = func() time.Time { return c.now }
	l.after = func(d time.Duration, f func()) { c.timers = append(c.timers, fakeTimer{c.now.Add(d), f}) }
}

func (c *fakeClock) advance(d time.Duration) {
	c.now = c.now.Add(d)
	var due []func()
	c.timers = slices.DeleteFunc(c.timers, func(t fakeTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		due = append(due, t.f)
		return true
	})
	for _, f := range due {
		f()
	}
}

// lines records what reaches the inner handler, one string per record:
// "LEVEL message k=v ...", attributes from WithAttrs included.
type lines struct {
	mu  *sync.Mutex
	out *[]string
	pre string
}

func newLines() *lines { return &lines{mu: new(sync.Mutex), out: new([]string)} }

func (h *lines) Enabled(context.Context, slog.Level) bool { return true }
func (h *lines) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message + h.pre
	r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.out = append(*h.out, s)
	return nil
}
func (h *lines) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	for _, a := range as {
		c.pre += " " + a.String()
	}
	return &c
}
func (h *lines) WithGroup(string) slog.Handler { return h }

// take returns the lines recorded since the last call.
func (h *lines) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := *h.out
	*h.out = nil
	return out
}

func TestThrottle(t *testing.T) {
	rep := func(n int, s string) []string { return slices.Repeat([]string{s}, n) }
	for _, c := range []struct {
		name string
		run  func(log *slog.Logger, clk *fakeClock)
		want []string
	}{
		{"under the burst", func(log *slog.Logger, clk *fakeClock) {
			for range 3 {
				log.Warn("dropped message")
			}
			clk.advance(time.Second)
		}, rep(3, "WARN dropped message")},
		{"flood: burst, then one summary at the window's end", func(log *slog.Logger, clk *fakeClock) {
			for range 10 {
				log.Warn("dropped message", "err", "bad signature")
			}
			clk.advance(999 * time.Millisecond)
			log.Warn("dropped message", "err", "replayed")
			clk.advance(time.Millisecond)
		}, append(rep(3, "WARN dropped message err=bad signature"),
			"WARN suppressed repeated log lines log_message=dropped message suppressed=8 interval=1s")},
		{"next window passes the burst again", func(log *slog.Logger, clk *fakeClock) {
			for range 5 {
				log.Warn("w")
			}
			clk.advance(time.Second)
			for range 4 {
				log.Warn("w")
			}
			clk.advance(time.Second)
		}, slices.Concat(rep(3, "WARN w"), []string{"WARN suppressed repeated log lines log_message=w suppressed=2 interval=1s"},
			rep(3, "WARN w"), []string{"WARN suppressed repeated log lines log_message=w suppressed=1 interval=1s"})},
		{"late timer: the next line emits the summary, the timer nothing", func(log *slog.Logger, clk *fakeClock) {
			for range 4 {
				log.Warn("w")
			}
			clk.now = clk.now.Add(2 * time.Second) // the timer has not run yet
			log.Warn("w")
			clk.advance(0)
		}, slices.Concat(rep(3, "WARN w"), []string{"WARN suppressed repeated log lines log_message=w suppressed=1 interval=1s", "WARN w"})},
		{"flushAll emits what is due at once; the timer then nothing", func(log *slog.Logger, clk *fakeClock) {
			for range 5 {
				log.Warn("w")
			}
			log.Error("e")
			log.Handler().(*throttle).l.flushAll()
			clk.advance(time.Second)
		}, slices.Concat(rep(3, "WARN w"), []string{"ERROR e", "WARN suppressed repeated log lines log_message=w suppressed=2 interval=1s"})},
		{"keys are level and message", func(log *slog.Logger, clk *fakeClock) {
			for range 4 {
				log.Warn("a")
				log.Error("a")
				log.Warn("b")
			}
		}, slices.Repeat([]string{"WARN a", "ERROR a", "WARN b"}, 3)},
		{"debug is never throttled", func(log *slog.Logger, clk *fakeClock) {
			for range 5 {
				log.Debug("d")
			}
		}, rep(5, "DEBUG d")},
		{"derived loggers share the limit; the summary keeps their attributes", func(log *slog.Logger, clk *fakeClock) {
			tr := log.With("component", "transport")
			log.Warn("peer dropped")
			for range 3 {
				tr.Warn("peer dropped")
			}
			clk.advance(time.Second)
		}, []string{"WARN peer dropped", "WARN peer dropped component=transport", "WARN peer dropped component=transport",
			"WARN suppressed repeated log lines component=transport log_message=peer dropped suppressed=1 interval=1s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := newLines()
			l := newLimiter(3, time.Second)
			clk := &fakeClock{now: time.Unix(1000, 0)}
			clk.install(l)
			c.run(slog.New(newThrottle(out, l)), clk)
			got := out.take()
			if !slices.Equal(got, c.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestThrottleConcurrent: counts stay exact when many goroutines log at
// once (meaningful under -race).
func TestThrottleConcurrent(t *testing.T) {
	out := newLines()
	l := newLimiter(5, time.Second)
	clk := &fakeClock{now: time.Unix(1000, 0)}
	var mu sync.Mutex // guards clk: the limiter calls after under its own lock
	l.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clk.now }
	var flushes []func()
	l.after = func(_ time.Duration, f func()) { mu.Lock(); defer mu.Unlock(); flushes = append(flushes, f) }
	log := slog.New(newThrottle(out, l))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 100 {
				log.Warn("m", "g", g)
			}
		})
	}
	wg.Wait()
	if len(flushes) != 1 {
		t.Fatalf("%d flushes scheduled, want 1", len(flushes))
	}
	flushes[0]()
	got := out.take()
	want := fmt.Sprintf("WARN suppressed repeated log lines log_message=m suppressed=%d interval=1s", 800-5)
	if len(got) != 6 || got[5] != want {
		t.Fatalf("got %d lines, last %q; want 6, last %q", len(got), got[len(got)-1], want)
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBadMessageFlood: a client sending forged messages by the hundred
// gets a few log lines and a summary; Stats counts every message.
func TestBadMessageFlood(t *testing.T) {
	cfg := testConfig(t)
	var out syncBuffer
	h, err := New(cfg, dictdb.New(dictdb.Options{}), slog.New(slog.NewTextHandler(&out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runHub(t, h, cfg)
	c := newClient(t, h)
	const forged = 500
	start := time.Now()
	for range forged {
		frames, err := c.sess.Encode(c.sess.NewMessage("connection_request", map[string]any{}, nil))
		if err != nil {
			t.Fatal(err)
		}
		frames[1] = []byte(strings.Repeat("0", len(frames[1])))
		c.query.sendFrames(frames)
	}
	c.ok(t, "connection_request", nil) // answered after the forged ones were read
	windows := int(time.Since(start)/logInterval) + 1
	if s := h.Stats(); s.BadMessages != forged {
		t.Errorf("BadMessages = %d, want %d", s.BadMessages, forged)
	}
	for end := time.Now().Add(waitFor); !strings.Contains(out.String(), "suppressed repeated log lines"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no summary line within %v:\n%s", waitFor, out.String())
		}
	}
	logged := strings.Count(out.String(), `msg="dropped message"`)
	if logged < logBurst || logged > windows*logBurst {
		t.Errorf("%d forged messages logged in %d windows, want %d to %d", logged, windows, logBurst, windows*logBurst)
	}
	if !strings.Contains(out.String(), `log_message="dropped message" suppressed=`) {
		t.Errorf("summary does not name the message:\n%s", out.String())
	}
}
