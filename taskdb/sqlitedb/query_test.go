package sqlitedb

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/query"
)

// TestLargeIn runs $in and $nin with 20,000 operands through the SQL path
// (json_each), including the fallback for strings JSON cannot carry.
func TestLargeIn(t *testing.T) {
	db := open(t, Options{})
	w := dbtest.NewWorkload()
	for i := range 50 {
		if err := db.AddRecord(t.Context(), w.ID(i), w.Record(i)); err != nil {
			t.Fatal(err)
		}
	}
	list := make([]any, 20_000)
	for i := range list {
		list[i] = fmt.Sprintf("x%d", i)
	}
	list[3], list[19_999] = w.ID(7), w.ID(42)
	bad := append([]any{"\xff\xfe"}, list...)
	times := make([]any, 20_000)
	for i := range times {
		times[i] = w.Submitted(1000 + i)
	}
	times[5] = w.Submitted(9).In(time.FixedZone("+02:00", 7200))
	for _, c := range []struct {
		name string
		q    map[string]any
		want int
	}{
		{"msg_id $in", map[string]any{"msg_id": map[string]any{"$in": list}}, 2},
		{"msg_id $in invalid UTF-8", map[string]any{"msg_id": map[string]any{"$in": bad}}, 2},
		{"client_uuid $in", map[string]any{"client_uuid": map[string]any{"$in": append(list, w.Client(3))}}, 1},
		{"submitted $in", map[string]any{"submitted": map[string]any{"$in": times}}, 1},
		{"msg_id $nin", map[string]any{"msg_id": map[string]any{"$nin": list}}, 48},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := query.Parse(c.q)
			if err != nil {
				t.Fatal(err)
			}
			for _, keys := range [][]string{nil, {"client_uuid"}} {
				rs, err := db.FindRecords(t.Context(), f, keys)
				if err != nil || len(rs) != c.want {
					t.Errorf("keys %v: %d records, %v; want %d", keys, len(rs), err, c.want)
				}
			}
		})
	}
	f, _ := query.Parse(map[string]any{"msg_id": map[string]any{"$in": list}})
	if where, _ := db.whereSQL(f); !strings.Contains(where, "json_each") {
		t.Errorf("20,000 ids translate to %.80s, want json_each", where)
	}
}

// TestCatalogQueries checks that queries answered from the catalog give
// what the SQL path gives for the same records.
func TestCatalogQueries(t *testing.T) {
	db := open(t, Options{})
	ctx := t.Context()
	w := dbtest.NewWorkload()
	for i := range 60 {
		r := w.Record(i)
		if i%7 == 0 {
			r["submitted"] = nil
		}
		if i%5 == 0 {
			r["submitted"] = w.Submitted(60 - i).In(time.FixedZone("-03:00", -3*3600))
		}
		if err := db.AddRecord(ctx, w.ID(i), r); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 60; i += 9 {
		if err := db.DropRecord(ctx, w.ID(i)); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateRecord(ctx, w.ID(i+1), taskdb.Record{"submitted": w.Submitted(3)}); err != nil {
			t.Fatal(err)
		}
	}
	mid := w.Submitted(30)
	for _, q := range []map[string]any{
		{},
		{"submitted": map[string]any{"$lt": mid}},
		{"submitted": map[string]any{"$gte": w.Submitted(3), "$lte": mid}},
		{"submitted": nil},
		{"submitted": map[string]any{"$exists": true}},
		{"submitted": map[string]any{"$gt": "not a time"}},
		{"submitted": w.Submitted(3)},
		{"msg_id": map[string]any{"$regex": "_4242_1"}},
		{"$or": []any{map[string]any{"msg_id": w.ID(2)}, map[string]any{"submitted": map[string]any{"$gt": mid}}}},
		{"submitted.x": nil},
	} {
		f, err := query.Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		if !coveredByCatalog(f, []string{"msg_id", "submitted"}) {
			t.Errorf("%s is not answered from the catalog", f)
		}
		got, err := db.FindRecords(ctx, f, []string{"submitted"})
		if err != nil {
			t.Fatal(err)
		}
		want, err := db.FindRecords(ctx, f, []string{"submitted", "client_uuid"}) // the SQL path
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range want {
			delete(r, "client_uuid")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: catalog gives %d records, SQL %d:\n%v\n%v", f, len(got), len(want), got, want)
		}
	}
}
