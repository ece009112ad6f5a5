package sqlitedb

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
)

// Empty documents, arrays and byte strings read back empty, not null,
// also when they are the first values a read decodes.
func TestReadEmptyValues(t *testing.T) {
	db := open(t, Options{})
	ctx := t.Context()
	rec := taskdb.Record{"header": map[string]any{}, "buffers": []any{}, "x_empty": []byte{}}
	if err := db.AddRecord(ctx, "a", rec); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetRecord(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	found, err := db.FindRecords(ctx, nil, nil)
	if err != nil || len(found) != 1 {
		t.Fatalf("FindRecords = %v, %v; want the record", found, err)
	}
	for _, d := range []taskdb.Doc{got, found[0]} {
		if h, ok := d.Get("header").(taskdb.Doc); !ok || h == nil {
			t.Errorf("header = %#v, want an empty Doc", d.Get("header"))
		}
		if b, ok := d.Get("buffers").([]any); !ok || b == nil {
			t.Errorf("buffers = %#v, want an empty array", d.Get("buffers"))
		}
		if x, ok := d.Get("x_empty").([]byte); !ok || x == nil {
			t.Errorf("x_empty = %#v, want empty bytes", d.Get("x_empty"))
		}
	}
}
