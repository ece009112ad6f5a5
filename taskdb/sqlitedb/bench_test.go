package sqlitedb

import (
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
)

// BenchmarkDB runs the shared benchmarks with sync: batch (the default)
// and sync: full. The file lives in b.TempDir(), usually on the same
// disk as the build cache.
func BenchmarkDB(b *testing.B) {
	for _, mode := range []string{SyncBatch, SyncFull} {
		b.Run("sync="+mode, func(b *testing.B) {
			dbtest.Bench(b, func(b *testing.B) taskdb.DB { return openOnly(b, Options{Sync: mode}) })
		})
	}
}

// BenchmarkConcurrentAdd measures committed AddRecords from 64
// goroutines, where sync: full shares one fsync among the writes of a
// group commit.
func BenchmarkConcurrentAdd(b *testing.B) {
	w := dbtest.NewWorkload()
	for _, mode := range []string{SyncBatch, SyncFull} {
		b.Run("sync="+mode, func(b *testing.B) {
			db := open(b, Options{Sync: mode})
			var next atomic.Int64
			b.SetParallelism(32)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1))
					if err := db.AddRecord(b.Context(), w.ID(i), w.Record(i)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if err := db.sync(b.Context()); err != nil { // count commits, not just queueing
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			s := db.Stats()
			b.ReportMetric(float64(s.Writes)/float64(max(s.Commits, 1)), "writes/commit")
		})
	}
}

// BenchmarkReopen measures opening a file of 100k records, which loads
// the catalog: the cost a restart adds.
func BenchmarkReopen(b *testing.B) {
	const n = 100_000
	path := filepath.Join(b.TempDir(), "tasks.db")
	db := openOnly(b, Options{Path: path})
	load(b, db, n)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		db := openOnly(b, Options{Path: path})
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/open")
}
