package dictdb_test

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/dictdb"
)

func TestConformance(t *testing.T) {
	dbtest.Run(t, func(*testing.T) taskdb.DB { return dictdb.New(dictdb.DefaultOptions()) })
}

func TestConformanceUnlimited(t *testing.T) {
	dbtest.Run(t, func(*testing.T) taskdb.DB { return dictdb.New(dictdb.Options{}) })
}

func BenchmarkDB(b *testing.B) {
	dbtest.Bench(b, func(*testing.B) taskdb.DB { return dictdb.New(dictdb.Options{}) })
}
