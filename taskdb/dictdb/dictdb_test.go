package dictdb_test

import (
	"fmt"
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

// TestFindLarge checks a large result against GetRecord, record by
// record, in insertion order, whole and projected.
func TestFindLarge(t *testing.T) {
	db := dictdb.New(dictdb.Options{})
	defer db.Close()
	w := dbtest.NewWorkload()
	const n = 5000
	for i := range n {
		rec := w.Record(i)
		if err := db.AddRecord(t.Context(), w.ID(i), rec); err != nil {
			t.Fatal(err)
		}
	}
	for _, keys := range [][]string{nil, {"submitted", "header"}} {
		rs, err := db.FindRecords(t.Context(), nil, keys)
		if err != nil || len(rs) != n {
			t.Fatalf("keys %v: %d records, %v", keys, len(rs), err)
		}
		for i, r := range rs {
			want, err := db.GetRecord(t.Context(), w.ID(i))
			if err != nil {
				t.Fatal(err)
			}
			if r.Get("msg_id") != w.ID(i) || !sameKeys(r, want, keys) {
				t.Fatalf("keys %v: record %d = %v, want %v", keys, i, r, want)
			}
		}
	}
}

func sameKeys(got, want taskdb.Doc, keys []string) bool {
	if len(keys) == 0 {
		return fmt.Sprint(got) == fmt.Sprint(want)
	}
	for _, k := range keys {
		if fmt.Sprint(got.Get(k)) != fmt.Sprint(want.Get(k)) {
			return false
		}
	}
	return len(got) == len(keys)+1
}
