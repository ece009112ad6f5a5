package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func watchCmd(fs *flag.FlagSet) runFunc {
	interval := fs.Duration("interval", time.Second, "time between refreshes")
	count := fs.Int("count", 0, "exit after `N` refreshes (0: until Ctrl-C)")
	return func(ctx context.Context, e *env, args []string) error { return watch(ctx, e, args, *interval, *count) }
}

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// watch redraws the hub's engines, pending and completed counts and
// tasks/s every interval, until ctx ends (Ctrl-C: exit 0) or after count
// refreshes. A failed refresh is shown and retried; watch returns the last
// refresh's error, if any, when count ends it.
func watch(ctx context.Context, e *env, args []string, interval time.Duration, count int) error {
	switch {
	case len(args) > 0:
		return usagef("watch: unexpected arguments %q", args)
	case interval <= 0:
		return usagef("watch: --interval %v is not positive", interval)
	case count < 0:
		return usagef("watch: --count %d is negative", count)
	}
	c, err := e.connect(ctx)
	if err != nil {
		return err
	}
	tty := isTerminal(e.stdout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var prev *snapshot
	var lastErr error
	for i := 0; count == 0 || i < count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		s, err := sample(ctx, c, false)
		if ctx.Err() != nil {
			return nil
		}
		var b bytes.Buffer
		if tty {
			b.WriteString(clearScreen)
		} else if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "taskhub watch  %s  %s  (every %v; Ctrl-C to quit)\n", c.Addr(), time.Now().Format("15:04:05"), interval)
		if err != nil {
			fmt.Fprintf(&b, "\nerror: %v\n", err)
		} else {
			rate := "-"
			if prev != nil {
				_, _, _, done := s.totals()
				_, _, _, before := prev.totals()
				if dt := s.at.Sub(prev.at).Seconds(); dt > 0 {
					rate = fmt.Sprintf("%.1f", max(0, float64(done-before))/dt)
				}
			}
			fmt.Fprintf(&b, "tasks/s: %s\n\n", rate)
			writeStatus(&b, s, false)
			prev = &s
		}
		lastErr = err
		if _, err := e.stdout.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return lastErr
}

// isTerminal reports whether w is a terminal, which gets a redrawn screen
// rather than successive frames.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
