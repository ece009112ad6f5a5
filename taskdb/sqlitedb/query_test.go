package sqlitedb

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unique"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
	"github.com/taskhub/taskhub/taskdb/query"
)

// TestLargeIn runs $in and $nin with 20,000 operands through the SQL path
// (json_each), including the fallback for strings JSON cannot carry.
func TestLargeIn(t *testing.T) {
	db := open(t, Options{})
	w := load(t, db, 50)
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
			rs, err := db.FindRecords(t.Context(), f, []string{"client_uuid"}) // the SQL path
			if err != nil || len(rs) != c.want {
				t.Errorf("%d records, %v; want %d", len(rs), err, c.want)
			}
		})
	}
	// client_uuids become the seqs of the catalog's rows that hold them.
	for i := range dbtest.Clients {
		list = append(list, w.Client(i))
	}
	f, _ := query.Parse(map[string]any{"client_uuid": map[string]any{"$in": list}})
	if where, _ := db.whereSQL(f); !strings.Contains(where, "json_each") {
		t.Errorf("20,000 client_uuids matching 50 records translate to %.80s, want json_each", where)
	}
	// msg_ids become the seqs of the catalog's rows: as many as exist.
	f, _ = query.Parse(map[string]any{"msg_id": map[string]any{"$in": list}})
	if where, args := db.whereSQL(f); where != "seq IN (?, ?)" || len(args) != 2 {
		t.Errorf("20,000 ids of which 2 exist translate to %.80s %v, want the 2 seqs", where, args)
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
		{"msg_id": w.ID(2)},
		{"msg_id": w.ID(9)}, // dropped
		{"msg_id": map[string]any{"$in": []any{w.ID(40), w.ID(4), w.ID(40), "missing", int64(4)}}},
		{"msg_id": map[string]any{"$in": []any{w.ID(5), w.ID(6)}}, "submitted": map[string]any{"$lt": mid}},
		{"msg_id": nil},
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
		for i, r := range want {
			want[i] = slices.DeleteFunc(r, func(f taskdb.Field) bool { return f.Key == "client_uuid" })
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: catalog gives %d records, SQL %d:\n%v\n%v", f, len(got), len(want), got, want)
		}
	}
}

// TestPushdown checks the SQL translation never loses a record the
// matcher accepts, over queries mixing $or, $and, $exists, $ne, $in and
// ranges on typed, BLOB-holding and extra fields, and that $or and
// $exists: true reach SQL.
func TestPushdown(t *testing.T) {
	db := open(t, Options{})
	ctx := t.Context()
	w := dbtest.NewWorkload()
	for i := range 40 {
		r := w.Record(i)
		switch i % 8 {
		case 1:
			r["client_uuid"] = []any{w.Client(1), int64(7)} // a BLOB in an indexed column
		case 2:
			r["submitted"] = nil
		case 3:
			r["queue"] = int64(3)
		case 4:
			r["engine_uuid"] = "\xff\xfe"
		case 5:
			r["stdout"] = nil
		case 7:
			r["client_uuid"] = unique.Handle[string](identOther).Value() // the catalog's marker of non-strings
		}
		if err := db.AddRecord(ctx, w.ID(i), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.UpdateRecord(ctx, w.ID(6), taskdb.Record{"display_data": "x"}); err != nil {
		t.Fatal(err)
	}
	all, err := db.FindRecords(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mid := w.Submitted(20)
	for _, q := range []map[string]any{
		{"$or": []any{map[string]any{"client_uuid": w.Client(1)}, map[string]any{"completed": nil}}},
		{"$or": []any{map[string]any{"submitted": map[string]any{"$lt": mid}}, map[string]any{"queue": int64(3)}}},
		{"$or": []any{map[string]any{"engine_uuid": "\xff\xfe"}, map[string]any{"msg_id": w.ID(3)}}},
		{"$or": []any{map[string]any{"client_uuid": int64(7)}, map[string]any{"display_data": map[string]any{"$exists": true}}}},
		{"$and": []any{map[string]any{"$or": []any{map[string]any{"completed": nil}, map[string]any{"submitted": nil}}}, map[string]any{"client_uuid": map[string]any{"$in": []any{w.Client(1), w.Client(2)}}}}},
		{"submitted": map[string]any{"$exists": true}, "stdout": map[string]any{"$ne": nil}},
		{"completed": map[string]any{"$ne": nil}, "$or": []any{map[string]any{"engine_uuid": map[string]any{"$regex": "^e0"}}, map[string]any{"queue": "task"}}},
		{"$nor": []any{map[string]any{"completed": nil}}, "queue": map[string]any{"$nin": []any{"task"}}},
		{"client_uuid": map[string]any{"$gte": w.Client(3)}, "$or": []any{map[string]any{"stdout": ""}, map[string]any{"stdout": nil}}},
		{"engine_uuid": map[string]any{"$gt": "e0000001", "$lte": "e0000005-000000000000000000000005"}},
		{"engine_uuid": map[string]any{"$gte": "e0000001", "$lt": "e0000005-000000000000000000000005"}, "client_uuid": map[string]any{"$lt": w.Client(30)}},
		{"client_uuid": map[string]any{"$gt": int64(5)}},
		{"client_uuid": map[string]any{"$lt": w.Submitted(3)}},
		{"client_uuid": int64(7)},
		{"client_uuid": nil},
		{"client_uuid": unique.Handle[string](identOther).Value()},
		{"client_uuid": map[string]any{"$lt": w.Client(3)}},
		{"engine_uuid": map[string]any{"$in": []any{nil, "\xff\xfe"}}, "completed": nil},
		{"engine_uuid": map[string]any{"$in": []any{nil, "\xff\xfe"}}, "completed": map[string]any{"$in": []any{nil, w.Submitted(9).Add(time.Millisecond)}}},
		{"engine_uuid": map[string]any{"$in": []any{nil, "\xff\xfe"}}, "completed": map[string]any{"$ne": nil}},
	} {
		f, err := query.Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, r := range all {
			if f.MatchDoc(r) {
				want = append(want, r.Get("msg_id").(string))
			}
		}
		rs, err := db.FindRecords(ctx, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.Get("msg_id").(string))
		}
		if !reflect.DeepEqual(got, want) {
			where, _ := db.whereSQL(f)
			t.Errorf("%s (WHERE %s):\n got %v\nwant %v", f, where, got, want)
		}
	}
	for q, want := range map[string]string{
		`{"$or":[{"completed":null},{"client_uuid":"c"}]}`: " OR ",
		`{"completed":{"$exists":true}}`:                   "completed IS NOT NULL",
		`{"completed":{"$ne":null}}`:                       "completed IS NOT NULL",
		`{"$or":[{"completed":null},{"x":1}]}`:             "1", // one branch implies nothing
	} {
		if where, _ := db.whereSQL(query.MustParse(q)); !strings.Contains(where, want) {
			t.Errorf("WHERE for %s = %s, want it to contain %q", q, where, want)
		}
	}
}

// TestScanCanceled checks that a query stops reading rows once its
// context is done: the driver watches it only while the query starts.
func TestScanCanceled(t *testing.T) {
	db := open(t, Options{})
	load(t, db, 50)
	if err := db.sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	seen := 0
	cols := allColumns
	_, err := db.scan(ctx, cols, nil, "SELECT "+selectList(cols)+" FROM "+db.table, nil, nil, func(r taskdb.Doc) taskdb.Doc {
		seen++
		cancel() // after the first row
		return r
	})
	if !errors.Is(err, context.Canceled) || seen != 1 {
		t.Fatalf("scan after cancel: err %v after %d rows, want context.Canceled after 1", err, seen)
	}
}
