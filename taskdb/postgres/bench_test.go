package postgres

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
)

// BenchmarkDB runs the shared benchmarks against the test server, each
// DB on a fresh table. Tables and DBs belong to the top-level benchmark:
// Bench closes the DBs itself and uses the loaded one across
// sub-benchmarks.
func BenchmarkDB(b *testing.B) {
	dbtest.Bench(b, func(*testing.B) taskdb.DB { return open(b, Options{}) })
}
