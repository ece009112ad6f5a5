package hub

import (
	"fmt"
	"log/slog"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb/dictdb"
)

// BenchmarkTasks measures load-balanced no-op tasks through the hub with
// Go fake engines over loopback: each op is one task, submit to result,
// with `window` tasks in flight per client. The fake engines and the
// clients share the machine with the hub, and cpu-µs/task counts the CPU
// time of the whole process (hub and peers): on a shared machine it
// varies much less than tasks/s.
func BenchmarkTasks(b *testing.B) {
	for _, c := range []struct{ engines, clients, window, hwm int }{
		{1, 1, 1, 1}, // latency: one task at a time
		{2, 1, 64, 1},
		{8, 1, 256, 1},
		{8, 4, 64, -1},
	} {
		name := fmt.Sprintf("engines=%d/clients=%d/window=%d/hwm=%d", c.engines, c.clients, c.window, c.hwm)
		b.Run(name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.HWM = c.hwm
			cfg.HeartbeatPeriod = time.Second
			db := dictdb.New(dictdb.Options{RecordLimit: 1 << 20})
			h, err := New(cfg, db, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			runHub(b, h, cfg)
			clients := make([]*client, c.clients)
			for i := range clients {
				clients[i] = newClient(b, h)
			}
			for range c.engines {
				startEngine(b, h, clients[0], true)
			}
			per := b.N/c.clients + 1
			lat := make(chan []time.Duration, c.clients)
			b.ResetTimer()
			cpu0 := processCPU(b)
			start := time.Now()
			for _, cl := range clients {
				go func() { lat <- cl.pipeline(b, per, c.window) }()
			}
			var all []time.Duration
			for range clients {
				all = append(all, <-lat...)
			}
			elapsed := time.Since(start)
			cpu := processCPU(b) - cpu0
			b.StopTimer()
			slices.Sort(all)
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "tasks/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-µs/task")
		})
	}
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pipeline runs n no-op tasks keeping window in flight and returns each
// one's submit-to-result latency.
func (c *client) pipeline(tb testing.TB, n, window int) []time.Duration {
	sent := map[string]time.Time{}
	lat := make([]time.Duration, 0, n)
	next := 0
	for len(lat) < n {
		for next < n && len(sent) < window {
			sent[c.apply("ok", nil).Header.MsgID] = time.Now()
			next++
		}
		r := c.task.recv()
		if t0, ok := sent[r.Parent.MsgID]; ok {
			lat = append(lat, time.Since(t0))
			delete(sent, r.Parent.MsgID)
		}
	}
	return lat
}
