package wire_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/wire"
)

// benchMessage is a typical task message: an apply_request as the
// ipyparallel client sends it (header, empty parent, scheduling metadata,
// empty content) with 2 buffers (pickled function and arguments), behind
// one client identity: 9 frames on the wire, 6 of them the message proper.
func benchMessage(s *wire.Session) *wire.Message {
	m := taskMessage(s)
	m.Metadata = map[string]any{
		"after": []any{}, "follow": []any{}, "is_broadcast": false, "is_coalescing": false,
		"retries": int64(0), "targets": []any{}, "timeout": nil,
	}
	return m
}

// cpuClock measures the CPU time (user and system) the process uses
// while a benchmark runs: on a shared machine it varies much less than
// ns/op, which counts time spent waiting for a core.
type cpuClock time.Duration

func startCPU(b *testing.B) cpuClock { return cpuClock(processCPU(b)) }

// report adds cpu-ns/op.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU(b)-time.Duration(c))/float64(b.N), "cpu-ns/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func frameBytes(frames [][]byte) int64 {
	var n int
	for _, f := range frames {
		n += len(f)
	}
	return int64(n)
}

func BenchmarkEncode(b *testing.B) {
	for _, packer := range []string{"msgpack", "json"} {
		b.Run(packer, func(b *testing.B) {
			s := newSession(b, wire.Config{Key: testKey, Packer: packer})
			m := benchMessage(s)
			b.SetBytes(frameBytes(encode(b, s, m)))
			b.ReportAllocs()
			cpu := startCPU(b)
			for b.Loop() {
				if _, err := s.Encode(m); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkDecode verifies, checks for replay and decodes distinct
// messages: it cycles through twice as many as the replay history holds,
// so every decode also remembers a digest and evicts the oldest.
func BenchmarkDecode(b *testing.B) {
	const history = 4096
	for _, packer := range []string{"msgpack", "json"} {
		b.Run(packer, func(b *testing.B) {
			s := newSession(b, wire.Config{Key: testKey, Packer: packer, ReplayHistory: history})
			msgs := make([][][]byte, 2*history)
			for i := range msgs {
				msgs[i] = encode(b, s, benchMessage(s))
			}
			b.SetBytes(frameBytes(msgs[0]))
			b.ReportAllocs()
			i := 0
			cpu := startCPU(b)
			for b.Loop() {
				if _, err := s.Decode(msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			cpu.report(b)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
