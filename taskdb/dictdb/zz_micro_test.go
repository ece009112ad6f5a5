package dictdb

import (
	"syscall"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
)

func BenchmarkZZLocate(b *testing.B) {
	defer cpu(b)()
	for b.Loop() {
		for _, k := range taskdb.SchemaKeys {
			locate(k)
		}
	}
}

func BenchmarkZZNewRec(b *testing.B) {
	w := dbtest.NewWorkload()
	r := w.Record(1)
	defer cpu(b)()
	for b.Loop() {
		newRec(w.ID(1), r)
	}
}

func BenchmarkZZIter(b *testing.B) {
	w := dbtest.NewWorkload()
	r := w.Record(1)
	n := 0
	defer cpu(b)()
	for b.Loop() {
		for k := range r {
			n += len(k)
		}
	}
}

func BenchmarkZZFreezeHeader(b *testing.B) {
	w := dbtest.NewWorkload()
	r := w.Record(1)
	defer cpu(b)()
	for b.Loop() {
		freeze("header", r["header"])
	}
}
func BenchmarkZZFreezeContent(b *testing.B) {
	w := dbtest.NewWorkload()
	r := w.Record(1)
	defer cpu(b)()
	for b.Loop() {
		freeze("content", r["content"])
	}
}
func BenchmarkZZPackBuffers(b *testing.B) {
	w := dbtest.NewWorkload()
	r := w.Record(1)
	defer cpu(b)()
	for b.Loop() {
		packBlobs(r["buffers"])
	}
}

func cpu(b *testing.B) func() {
	now := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	t0 := now()
	return func() { b.ReportMetric(float64(now()-t0)/float64(b.N), "cpu-ns/op") }
}
