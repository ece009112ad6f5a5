package mongodb

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/mongodb/mongotest"
)

// BenchmarkDB runs the shared benchmarks, each DB on a fresh database of
// one server. Through the FerretDB fixture the figures say that the
// backend works at scale, not how fast MongoDB is.
func BenchmarkDB(b *testing.B) {
	uri := mongotest.URI(b)
	dbtest.Bench(b, func(b *testing.B) taskdb.DB { return open(b, Options{URI: uri}) })
}
