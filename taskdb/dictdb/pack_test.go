package dictdb

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"unsafe"
	"weak"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// TestWords checks that every word is found, at its index, and that
// other strings are not.
func TestWords(t *testing.T) {
	for i, w := range words {
		j, ok := wordTable.index(w)
		if !ok || j != i {
			t.Errorf("word %d %q: got %d, %v", i, w, j, ok)
		}
	}
	for _, s := range []string{"x", "msg_i", "msg_idx", "apply_requesT", "6.0", "\x00", "okay"} {
		if j, ok := wordTable.index(s); ok {
			t.Errorf("%q found as word %d", s, j)
		}
	}
}

func TestSlotOf(t *testing.T) {
	for i, k := range taskdb.SchemaKeys {
		if got := slotOf(k); got != i {
			t.Errorf("slotOf(%q) = %d, want %d", k, got, i)
		}
	}
	for _, k := range []string{"", "x", "msg_idx", "Header", "stdout ", "display_data"} {
		if got := slotOf(k); got != extraSlot {
			t.Errorf("slotOf(%q) = %d, want extraSlot", k, got)
		}
	}
}

// TestLongBuffersOutOfLine checks that long buffers live outside the
// record's string, so that updates do not copy them, and that they read
// back, count toward the size limit, and go when replaced.
func TestLongBuffersOutOfLine(t *testing.T) {
	db := New(Options{})
	defer db.Close()
	ctx := t.Context()
	big := bytes.Repeat([]byte("b"), 10_000)
	if err := db.AddRecord(ctx, "m", taskdb.Record{"buffers": []any{big, []byte("small")}}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := db.UpdateRecord(ctx, "m", taskdb.Record{"stdout": strings.Repeat("x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	r := db.recs.get("m")
	ext := func() *[2]string { return db.store.ext[r.seq] }
	if r.n > maxInline || ext() == nil || ext()[0] == "" || ext()[1] != "" {
		t.Fatalf("buf %d bytes, ext %v", r.n, ext() != nil)
	}
	got, err := db.GetRecord(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	bufs := got.Get("buffers").([]any)
	if len(bufs) != 2 || !bytes.Equal(bufs[0].([]byte), big) || string(bufs[1].([]byte)) != "small" {
		t.Fatalf("buffers read back as %d values", len(bufs))
	}
	q := query.MustParse(`{"buffers": {"$size": 2}}`)
	if rs, err := db.FindRecords(ctx, q, []string{"buffers"}); err != nil || len(rs) != 1 {
		t.Fatalf("$size on long buffers: %d records, %v", len(rs), err)
	}
	if db.bytes != 10_005 || r.size != 10_005 {
		t.Fatalf("size %d, db bytes %d, want 10005", r.size, db.bytes)
	}
	if err := db.UpdateRecord(ctx, "m", taskdb.Record{"buffers": []any{[]byte("x")}, "result_buffers": []any{big}}); err != nil {
		t.Fatal(err)
	}
	if ext() == nil || ext()[0] != "" || ext()[1] == "" || db.bytes != 10_001 {
		t.Fatalf("after replacing: ext %v, db bytes %d, want 10001", ext(), db.bytes)
	}
	if err := db.UpdateRecord(ctx, "m", taskdb.Record{"result_buffers": nil}); err != nil {
		t.Fatal(err)
	}
	if ext() != nil || db.bytes != 1 {
		t.Fatalf("after clearing: ext %v, db bytes %d, want 1", ext(), db.bytes)
	}
}

// TestReplacedDataFreed checks that a record's data, once dropped or
// replaced by an update, is not kept alive by the DB: the count of
// records carrying an extra key must not hold its key as a substring of
// some record's data.
func TestReplacedDataFreed(t *testing.T) {
	ctx := t.Context()
	big := strings.Repeat("s", 1<<20)
	for _, tc := range []struct {
		name   string
		change func(db *DB) error
	}{
		{"drop", func(db *DB) error { return db.DropRecord(ctx, "big") }},
		{"update", func(db *DB) error { return db.UpdateRecord(ctx, "big", taskdb.Record{taskdb.KeyStdout: ""}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := New(Options{})
			defer db.Close()
			for _, id := range []string{"keep", "big"} {
				rec := taskdb.Record{"extra": int64(1)}
				if id == "big" {
					rec[taskdb.KeyStdout] = big
				}
				if err := db.AddRecord(ctx, id, rec); err != nil {
					t.Fatal(err)
				}
			}
			data := weak.Make(unsafe.StringData(db.store.buf(db.recs.get("big"))))
			if err := tc.change(db); err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			if data.Value() != nil {
				t.Error("the record's former data is still reachable")
			}
		})
	}
}

// TestIndexedNamedString checks that a client_uuid or engine_uuid of a
// named string type, which is stored as a string, is indexed as one, by
// an add or an update, and leaves the indexes with its record.
func TestIndexedNamedString(t *testing.T) {
	type uuid string
	ctx := t.Context()
	named := taskdb.Record{taskdb.KeyClientUUID: uuid("c"), taskdb.KeyEngineUUID: uuid("e")}
	for _, tc := range []struct {
		name        string
		add, update taskdb.Record
	}{
		{"add", named, nil},
		{"update", taskdb.Record{taskdb.KeyClientUUID: "c", taskdb.KeyEngineUUID: "e"}, named},
		{"update from odd", taskdb.Record{taskdb.KeyClientUUID: int64(1), taskdb.KeyEngineUUID: int64(2)}, named},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := New(Options{})
			defer db.Close()
			if err := db.AddRecord(ctx, "m", tc.add); err != nil {
				t.Fatal(err)
			}
			if tc.update != nil {
				if err := db.UpdateRecord(ctx, "m", tc.update); err != nil {
					t.Fatal(err)
				}
			}
			for _, x := range []struct {
				b *bucketIndex
				v string
			}{{&db.byClient, "c"}, {&db.byEngine, "e"}} {
				if o := x.b.by[x.v]; o == nil || o.size() != 1 || x.b.odd.size() != 0 {
					t.Errorf("%q: bucket %v, %d odd entries; want the record in its bucket", x.v, o, x.b.odd.size())
				}
			}
			if err := db.DropRecord(ctx, "m"); err != nil {
				t.Fatal(err)
			}
			for _, b := range []*bucketIndex{&db.byClient, &db.byEngine} {
				if len(b.by) != 0 || b.odd.size() != 0 {
					t.Errorf("dropped record left %d buckets and %d odd entries", len(b.by), b.odd.size())
				}
			}
		})
	}
}
