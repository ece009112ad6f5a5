package postgres

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/batch"
	"github.com/taskhub/taskhub/taskdb/query"
)

func TestMerge(t *testing.T) {
	d := taskdb.DocOf(taskdb.Record{"msg_id": "a", "stdout": "x", "b_extra": int64(1)})
	f := taskdb.DocOf(taskdb.Record{"stdout": "y", "completed": nil, "a_extra": true, "z": 1.5})
	want := taskdb.DocOf(taskdb.Record{"msg_id": "a", "stdout": "y", "completed": nil, "a_extra": true, "b_extra": int64(1), "z": 1.5})
	if got := merge(d, f); !reflect.DeepEqual(got, want) {
		t.Errorf("merge = %v, want %v", got, want)
	}
	if got := merge(d, nil); !reflect.DeepEqual(got, d) {
		t.Errorf("merge with nothing = %v", got)
	}
}

func TestReplay(t *testing.T) {
	stored := map[string]taskdb.Doc{
		"s": taskdb.DocOf(taskdb.Record{"msg_id": "s", "stdout": "old"}),
	}
	add := func(id string) batch.Op {
		return batch.Op{Kind: batch.Add, ID: id, Record: taskdb.Record{"msg_id": id}}
	}
	upd := func(id, out string) batch.Op {
		return batch.Op{Kind: batch.Update, ID: id, Record: taskdb.Record{"stdout": out}}
	}
	drop := func(id string) batch.Op { return batch.Op{Kind: batch.Drop, ID: id} }
	for _, c := range []struct {
		name          string
		ops           []batch.Op
		del, ins, upd []string // msg_ids; ins in order
		stdout        string   // of the single written record, if any
		rejected      bool
	}{
		{name: "add then update", ops: []batch.Op{add("a"), upd("a", "1"), upd("a", "2")}, ins: []string{"a"}, stdout: "2"},
		{name: "update stored", ops: []batch.Op{upd("s", "new")}, upd: []string{"s"}, stdout: "new"},
		{name: "drop stored", ops: []batch.Op{upd("s", "new"), drop("s")}, del: []string{"s"}},
		{name: "drop and re-add stored", ops: []batch.Op{drop("s"), add("s")}, del: []string{"s"}, ins: []string{"s"}},
		{name: "add and drop", ops: []batch.Op{add("a"), drop("a")}},
		{name: "insertion order", ops: []batch.Op{add("b"), add("a"), drop("b"), add("b")}, ins: []string{"a", "b"}},
		{name: "add stored", ops: []batch.Op{add("s")}, rejected: true},
		{name: "update missing", ops: []batch.Op{upd("m", "x")}, rejected: true},
		{name: "update dropped", ops: []batch.Op{add("a"), drop("a"), upd("a", "x")}, rejected: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := replay(c.ops, stored)
			var rej *rejected
			if c.rejected != errors.As(p.err, &rej) {
				t.Fatalf("err = %v, want rejected: %v", p.err, c.rejected)
			}
			if c.rejected {
				return
			}
			ids := func(ds []taskdb.Doc) []string {
				var s []string
				for _, d := range ds {
					s = append(s, d.Get("msg_id").(string))
				}
				return s
			}
			if !slices.Equal(p.del, c.del) || !slices.Equal(ids(p.ins), c.ins) || !slices.Equal(ids(p.upd), c.upd) {
				t.Errorf("del %v ins %v upd %v, want %v %v %v", p.del, ids(p.ins), ids(p.upd), c.del, c.ins, c.upd)
			}
			if w := append(p.ins, p.upd...); c.stdout != "" && (len(w) != 1 || w[0].Get("stdout") != c.stdout) {
				t.Errorf("written %v, want stdout %q", w, c.stdout)
			}
		})
	}
	if stored["s"].Get("stdout") != "old" {
		t.Error("replay modified a stored record")
	}
}

// whereSQL narrows with bound parameters only, and only where a typed
// column decides.
func TestWhereSQL(t *testing.T) {
	t1 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		q     string
		where string
		args  []any
	}{
		{`{}`, ``, nil},
		{`{"completed": null}`, `(completed IS NULL)`, nil},
		{`{"msg_id": "a'; DROP TABLE x; --"}`, `(msg_id = ANY($1))`, []any{[]string{"a'; DROP TABLE x; --"}}},
		{`{"msg_id": {"$in": ["a", "b", 3]}}`, `(msg_id = ANY($1))`, []any{[]string{"a", "b"}}},
		{`{"msg_id": 3}`, `false`, nil},
		{`{"client_uuid": "c", "completed": null}`, `((client_uuid = ANY($1)) OR other) AND (completed IS NULL)`, []any{[]string{"c"}}},
		{`{"client_uuid": 7}`, `(false OR other)`, nil},
		{`{"client_uuid": "nul\u0000"}`, `(false OR other)`, nil}, // text cannot hold it: stored as other
		{`{"queue": {"$gt": "nul\u0000"}}`, ``, nil},
		{`{"engine_uuid": {"$gte": "e", "$lt": "f"}}`, `(engine_uuid >= $1 OR other) AND (engine_uuid <= $2 OR other)`, []any{"e", "f"}},
		{`{"submitted": {"$lt": {"$date": "2024-01-02T03:04:05Z"}}}`, `submitted <= $1`, []any{t1}},
		{`{"submitted": {"$lt": 5}}`, ``, nil},
		{`{"submitted": {"$in": [{"$date": "2024-01-02T03:04:05Z"}, null, "x"]}}`, `(submitted = ANY($1) OR submitted IS NULL)`, []any{[]time.Time{t1}}},
		{`{"stdout": "x", "engine_uuid": {"$ne": "e"}}`, ``, nil},
		{`{"$and": [{"queue": "task"}, {"completed": {"$exists": false}}]}`, `((queue = ANY($1)) OR other) AND (completed IS NULL)`, []any{[]string{"task"}}},
	} {
		where, args := whereSQL(query.MustParse(c.q))
		if where != c.where || !reflect.DeepEqual(args, c.args) {
			t.Errorf("whereSQL(%s) = %q %#v, want %q %#v", c.q, where, args, c.where, c.args)
		}
	}
}
