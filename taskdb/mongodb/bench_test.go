package mongodb

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/mongodb/mongotest"
)

// BenchmarkDB runs the shared benchmarks, each DB on a fresh database of
// one server, which Bench closes (the databases are dropped when the
// benchmark ends). Through the FerretDB fixture the figures say that the
// backend works at scale, not how fast MongoDB is.
func BenchmarkDB(b *testing.B) {
	uri := mongotest.URI(b)
	dbtest.Bench(b, func(sb *testing.B) taskdb.DB {
		db, err := Open(sb.Context(), Options{URI: uri, Database: mongotest.Database(b, uri)})
		if err != nil {
			sb.Fatal(err)
		}
		return db
	})
}

// BenchmarkApplied measures writes applied on the server, not just
// queued: b.N adds, then b.N updates, each followed by the queue's read
// barrier.
func BenchmarkApplied(b *testing.B) {
	uri := mongotest.URI(b)
	w := dbtest.NewWorkload()
	for _, kind := range []string{"Add", "Update"} {
		b.Run(kind, func(b *testing.B) {
			db := open(b, Options{URI: uri})
			ctx := b.Context()
			if kind == "Update" {
				for i := range b.N {
					if err := db.AddRecord(ctx, w.ID(i), w.Record(i)); err != nil {
						b.Fatal(err)
					}
				}
				if err := db.q.Sync(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				var err error
				if kind == "Add" {
					err = db.AddRecord(ctx, w.ID(i), w.Record(i))
				} else {
					err = db.UpdateRecord(ctx, w.ID(i), w.Result(i))
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := db.q.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
