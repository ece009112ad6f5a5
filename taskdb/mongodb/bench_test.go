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

// BenchmarkAddApplied measures adds applied on the server, not just
// queued (the shared Add benchmark times the queueing of a write-behind
// backend): b.N adds, then the queue's read barrier. There is no update
// counterpart: FerretDB takes tens of milliseconds per update of a
// collection of a few hundred records, and a batch of them outlasts the
// queue's apply timeout.
func BenchmarkAddApplied(b *testing.B) {
	db := open(b, Options{})
	w := dbtest.NewWorkload()
	ctx := b.Context()
	b.ResetTimer()
	for i := range b.N {
		if err := db.AddRecord(ctx, w.ID(i), w.Record(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.q.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
