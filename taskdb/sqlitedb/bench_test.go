package sqlitedb

import (
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
