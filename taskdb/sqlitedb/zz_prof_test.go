package sqlitedb

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
)

func TestZZProfUpdate(t *testing.T) {
	out := os.Getenv("ZZPROF")
	if out == "" {
		t.Skip()
	}
	db := open(t, Options{})
	const n = 100_000
	w := load(t, db, n)
	if err := db.sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	ups := make([]taskdb.Record, 1000)
	for i := range ups {
		ups[i] = dbtest.NewWorkload().Result(i)
	}
	_ = w
	runtime.GC()
	f, _ := os.Create(out)
	pprof.StartCPUProfile(f)
	for i := range n {
		if err := db.UpdateRecord(t.Context(), w.ID(i), ups[i%1000]); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	pprof.StopCPUProfile()
	f.Close()
}
