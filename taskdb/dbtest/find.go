package dbtest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// loadFixture stores five records covering the value model, nulls,
// arrays and nested documents. Extra keys (n, tags, score) are added by
// UpdateRecord, the way the hub adds them.
//
//	id  client engine queue submitted completed n      tags               score
//	a1  c1     e1     task  t0        t0+2s     3      [x y]              2.5
//	a2  c1     e2     mux   t0+1s     null      4.0    [y]                -
//	a3  c2     null   null  null      null      "5"    []                 -
//	a4  c2     e1     task  t0+2s(+1h) t0+3s    true   [{k:1} {k:2}]      -
//	a5  c1     e1     task  t0+2s     t0+4s     null   -                  -
func loadFixture(t testing.TB, db taskdb.DB) {
	t.Helper()
	plus1 := time.FixedZone("+01:00", 3600)
	hdr := func(id, typ string) map[string]any {
		return map[string]any{"msg_id": id, "msg_type": typ, "username": "u", "session": "s", "date": t0, "version": "5.3"}
	}
	mustAdd(t, db, "a1", taskdb.Record{
		"header": hdr("a1", "apply_request"), "content": map[string]any{"a": int64(5)},
		"buffers": []any{[]byte("buffer-a1")}, "client_uuid": "c1", "engine_uuid": "e1", "queue": "task",
		"submitted": at(0), "started": at(1), "completed": at(2),
		"result_content": map[string]any{"status": "ok"}, "stdout": "hello",
	})
	mustAdd(t, db, "a2", taskdb.Record{
		"header": hdr("a2", "execute_request"), "content": map[string]any{"code": "1+1"},
		"client_uuid": "c1", "engine_uuid": "e2", "queue": "mux", "submitted": at(1),
	})
	h3 := hdr("a3", "apply_request")
	h3["nested"] = map[string]any{"deep": int64(1)}
	mustAdd(t, db, "a3", taskdb.Record{"header": h3, "client_uuid": "c2"})
	mustAdd(t, db, "a4", taskdb.Record{
		"header": hdr("a4", "apply_request"), "content": map[string]any{"a": int64(5)},
		"client_uuid": "c2", "engine_uuid": "e1", "queue": "task",
		"submitted": at(2).In(plus1), "completed": at(3),
		"result_content": map[string]any{"status": "error", "ename": "ValueError"},
		"error":          map[string]any{"ename": "ValueError", "evalue": "bad"},
	})
	mustAdd(t, db, "a5", taskdb.Record{
		"header": hdr("a5", "apply_request"), "client_uuid": "c1", "engine_uuid": "e1", "queue": "task",
		"submitted": at(2), "completed": at(4), "buffers": []any{},
		"execute_result": map[string]any{"data": map[string]any{"text/plain": "2"}},
	})
	mustUpdate(t, db, "a1", taskdb.Record{"n": int64(3), "tags": []any{"x", "y"}, "score": 2.5})
	mustUpdate(t, db, "a2", taskdb.Record{"n": 4.0, "tags": []any{"y"}})
	mustUpdate(t, db, "a3", taskdb.Record{"n": "5", "tags": []any{}})
	mustUpdate(t, db, "a4", taskdb.Record{"n": true, "tags": []any{map[string]any{"k": int64(1)}, map[string]any{"k": int64(2)}}})
	mustUpdate(t, db, "a5", taskdb.Record{"n": nil})
}

// date writes t as extended JSON.
func date(t time.Time) string { return fmt.Sprintf(`{"$date":%q}`, t.Format(time.RFC3339Nano)) }

type findCase struct {
	name string
	q    string
	want []string
}

// findCases covers every operator, alone and combined, on the fixture.
func findCases() []findCase {
	b64 := base64.StdEncoding.EncodeToString([]byte("buffer-a1"))
	all := []string{"a1", "a2", "a3", "a4", "a5"}
	return []findCase{
		{"empty", `{}`, all},
		{"msg_id", `{"msg_id":"a2"}`, []string{"a2"}},
		{"msg_id missing", `{"msg_id":"zz"}`, nil},
		{"msg_id $in", `{"msg_id":{"$in":["a3","zz","a1","a3"]}}`, []string{"a1", "a3"}},
		{"msg_id $nin", `{"msg_id":{"$nin":["a3","a1"]}}`, []string{"a2", "a4", "a5"}},
		{"msg_id $gt", `{"msg_id":{"$gt":"a3"}}`, []string{"a4", "a5"}},

		// null counts as absent
		{"null", `{"completed":null}`, []string{"a2", "a3"}},
		{"$eq null", `{"completed":{"$eq":null}}`, []string{"a2", "a3"}},
		{"$exists false", `{"completed":{"$exists":false}}`, []string{"a2", "a3"}},
		{"$exists true", `{"completed":{"$exists":true}}`, []string{"a1", "a4", "a5"}},
		{"$exists 0", `{"completed":{"$exists":0}}`, []string{"a2", "a3"}},
		{"$ne null", `{"completed":{"$ne":null}}`, []string{"a1", "a4", "a5"}},
		{"$in null", `{"engine_uuid":{"$in":[null,"e2"]}}`, []string{"a2", "a3"}},
		{"$nin null", `{"engine_uuid":{"$nin":[null]}}`, []string{"a1", "a2", "a4", "a5"}},
		{"extra explicit null", `{"n":null}`, []string{"a5"}},
		{"extra missing", `{"score":null}`, []string{"a2", "a3", "a4", "a5"}},
		{"extra exists", `{"score":{"$exists":true}}`, []string{"a1"}},
		{"unknown key null", `{"nosuch":null}`, all},
		{"unknown key value", `{"nosuch":1}`, nil},
		{"default empty string", `{"stdout":""}`, []string{"a2", "a3", "a4", "a5"}},
		{"comparison never matches null", `{"completed":{"$gte":null}}`, nil},

		// indexes
		{"client", `{"client_uuid":"c1"}`, []string{"a1", "a2", "a5"}},
		{"client pending", `{"client_uuid":"c1","completed":null}`, []string{"a2"}},
		{"client $in", `{"client_uuid":{"$in":["c2","c9"]}}`, []string{"a3", "a4"}},
		{"engine", `{"engine_uuid":"e1"}`, []string{"a1", "a4", "a5"}},
		{"engine null", `{"engine_uuid":null}`, []string{"a3"}},

		// ranges on times, compared as instants
		{"submitted $gt", `{"submitted":{"$gt":` + date(at(0)) + `}}`, []string{"a2", "a4", "a5"}},
		{"submitted $gte", `{"submitted":{"$gte":` + date(at(0)) + `}}`, []string{"a1", "a2", "a4", "a5"}},
		{"submitted $lt", `{"submitted":{"$lt":` + date(at(2)) + `}}`, []string{"a1", "a2"}},
		{"submitted $lte", `{"submitted":{"$lte":` + date(at(2)) + `}}`, []string{"a1", "a2", "a4", "a5"}},
		{"submitted range", `{"submitted":{"$gt":` + date(at(0)) + `,"$lt":` + date(at(2)) + `}}`, []string{"a2"}},
		{"submitted empty range", `{"submitted":{"$gt":` + date(at(2)) + `,"$lt":` + date(at(1)) + `}}`, nil},
		{"submitted eq other zone", `{"submitted":` + date(at(2).In(time.FixedZone("-05:00", -5*3600))) + `}`, []string{"a4", "a5"}},
		{"submitted $in times", `{"submitted":{"$in":[` + date(at(1)) + `,` + date(at(9)) + `]}}`, []string{"a2"}},
		{"completed $gt and client", `{"completed":{"$gt":` + date(at(2)) + `},"client_uuid":"c1"}`, []string{"a5"}},
		{"time vs string", `{"submitted":{"$lt":"2030-01-01"}}`, nil},
		{"time vs number", `{"submitted":{"$gt":0}}`, nil},

		// type classes
		{"int equals float", `{"n":4}`, []string{"a2"}},
		{"float equals int", `{"n":3.0}`, []string{"a1"}},
		{"string not number", `{"n":5}`, nil},
		{"string", `{"n":"5"}`, []string{"a3"}},
		{"bool not number", `{"n":1}`, nil},
		{"bool", `{"n":true}`, []string{"a4"}},
		{"number range", `{"n":{"$gte":3,"$lte":4}}`, []string{"a1", "a2"}},
		{"number $gt skips other types", `{"n":{"$gt":-1000}}`, []string{"a1", "a2"}},
		{"number $lt float", `{"n":{"$lt":3.5}}`, []string{"a1"}},
		{"string $gt", `{"n":{"$gt":"4"}}`, []string{"a3"}},
		{"bool $gt", `{"n":{"$gt":false}}`, []string{"a4"}},
		{"$in mixed types", `{"n":{"$in":[3,"5",false]}}`, []string{"a1", "a3"}},
		{"$nin mixed types", `{"n":{"$nin":[3,"5"]}}`, []string{"a2", "a4", "a5"}},
		{"$mod", `{"n":{"$mod":[2,0]}}`, []string{"a2"}},
		{"$mod odd", `{"n":{"$mod":[2,1]}}`, []string{"a1"}},
		{"$mod float args", `{"n":{"$mod":[2.9,1.5]}}`, []string{"a1"}},
		{"$eq list operand", `{"n":{"$eq":[1,2]}}`, nil},
		{"$lt list operand", `{"n":{"$lt":[1,2]}}`, nil},

		// arrays
		{"array contains", `{"tags":"y"}`, []string{"a1", "a2"}},
		{"array equals", `{"tags":["x","y"]}`, []string{"a1"}},
		{"array order matters", `{"tags":["y","x"]}`, nil},
		{"empty array", `{"tags":[]}`, []string{"a3"}},
		{"$all", `{"tags":{"$all":["y","x"]}}`, []string{"a1"}},
		{"$all one", `{"tags":{"$all":["y"]}}`, []string{"a1", "a2"}},
		{"$all empty", `{"tags":{"$all":[]}}`, nil},
		{"$all scalar field", `{"queue":{"$all":["task"]}}`, []string{"a1", "a4", "a5"}},
		{"$in array field", `{"tags":{"$in":["x","z"]}}`, []string{"a1"}},
		{"$nin array field", `{"tags":{"$nin":["y"]}}`, []string{"a3", "a4", "a5"}},
		{"$ne array field", `{"tags":{"$ne":"y"}}`, []string{"a3", "a4", "a5"}},
		{"$size", `{"tags":{"$size":2}}`, []string{"a1", "a4"}},
		{"$size 0", `{"tags":{"$size":0}}`, []string{"a3"}},
		{"$size buffers", `{"buffers":{"$size":1}}`, []string{"a1"}},
		{"$elemMatch doc", `{"tags":{"$elemMatch":{"k":{"$gt":1}}}}`, []string{"a4"}},
		{"$elemMatch ops", `{"tags":{"$elemMatch":{"$gte":"x","$lt":"y"}}}`, []string{"a1"}},
		{"$elemMatch $or", `{"tags":{"$elemMatch":{"$or":[{"k":1},{"k":5}]}}}`, []string{"a4"}},
		{"array path fan-out", `{"tags.k":2}`, []string{"a4"}},
		{"array path index", `{"tags.1.k":2}`, []string{"a4"}},
		{"array path index miss", `{"tags.0.k":2}`, nil},
		{"array index scalar", `{"tags.0":"x"}`, []string{"a1"}},
		{"array path range", `{"tags.k":{"$gt":1.5}}`, []string{"a4"}},
		{"bytes in array", `{"buffers":{"$binary":"` + b64 + `"}}`, []string{"a1"}},

		// documents and dotted paths
		{"dotted", `{"header.msg_type":"apply_request"}`, []string{"a1", "a3", "a4", "a5"}},
		{"dotted deep", `{"header.nested.deep":1}`, []string{"a3"}},
		{"dotted into result", `{"result_content.status":"error"}`, []string{"a4"}},
		{"dotted null", `{"result_content.status":null}`, []string{"a2", "a3", "a5"}},
		{"dotted exists", `{"execute_result.data.text/plain":{"$exists":true}}`, []string{"a5"}},
		{"dotted through scalar", `{"stdout.x":null}`, all},
		{"doc equality", `{"content":{"a":5}}`, []string{"a1", "a4"}},
		{"doc equality exact", `{"result_content":{"status":"ok"}}`, []string{"a1"}},
		{"doc equality no subset", `{"result_content":{"status":"error"}}`, nil},
		{"doc $eq", `{"content":{"$eq":{"a":5.0}}}`, []string{"a1", "a4"}},
		{"doc $in", `{"content":{"$in":[{"code":"1+1"}]}}`, []string{"a2"}},

		// regex
		{"$regex", `{"header.msg_type":{"$regex":"^apply"}}`, []string{"a1", "a3", "a4", "a5"}},
		{"$regex i", `{"header.msg_type":{"$regex":"^EXEC","$options":"i"}}`, []string{"a2"}},
		{"$regex x", `{"stdout":{"$regex":"h e l+ o  # comment","$options":"x"}}`, []string{"a1"}},
		{"$regex s", `{"stdout":{"$regex":"^h.*o$","$options":"ms"}}`, []string{"a1"}},
		{"$regex array", `{"tags":{"$regex":"^x"}}`, []string{"a1"}},
		{"$regex not string", `{"n":{"$regex":"5"}}`, []string{"a3"}},
		{"$not $regex", `{"header.msg_type":{"$not":{"$regex":"^apply"}}}`, []string{"a2"}},

		// negation and logic
		{"$not $gt", `{"n":{"$not":{"$gt":3}}}`, []string{"a1", "a3", "a4", "a5"}},
		{"$not $ne", `{"queue":{"$not":{"$ne":"mux"}}}`, []string{"a2"}},
		{"several ops", `{"n":{"$exists":true,"$ne":4,"$lt":10}}`, []string{"a1"}},
		{"$and", `{"$and":[{"client_uuid":"c1"},{"engine_uuid":"e1"}]}`, []string{"a1", "a5"}},
		{"$and same field", `{"$and":[{"n":{"$gt":2}},{"n":{"$lt":4}}]}`, []string{"a1"}},
		{"$or", `{"$or":[{"msg_id":"a1"},{"completed":null}]}`, []string{"a1", "a2", "a3"}},
		{"$or with field", `{"client_uuid":"c1","$or":[{"queue":"mux"},{"n":null}]}`, []string{"a2", "a5"}},
		{"$nor", `{"$nor":[{"client_uuid":"c1"},{"n":true}]}`, []string{"a3"}},
		{"nested logic", `{"$or":[{"$and":[{"queue":"task"},{"completed":{"$gt":` + date(at(3)) + `}}]},{"msg_id":"a3"}]}`, []string{"a3", "a5"}},
	}
}

func testFind(t *testing.T, db taskdb.DB) {
	loadFixture(t, db)
	for _, c := range findCases() {
		t.Run(c.name, func(t *testing.T) {
			if got := ids(mustFind(t, db, c.q)); !equalIDs(got, c.want) {
				t.Errorf("FindRecords(%s) = %v, want %v", c.q, got, c.want)
			}
		})
	}
	if rs, err := db.FindRecords(t.Context(), nil, nil); err != nil || len(rs) != 5 {
		t.Errorf("FindRecords(nil filter) = %d records, %v; want all 5", len(rs), err)
	}
}

// testFindAfterUpdate checks that updates keep whatever indexes serve the
// queries.
func testFindAfterUpdate(t *testing.T, db taskdb.DB) {
	loadFixture(t, db)
	mustUpdate(t, db, "a2", taskdb.Record{"completed": at(9), "engine_uuid": "e1", "client_uuid": "c2"})
	mustUpdate(t, db, "a5", taskdb.Record{"completed": nil, "submitted": at(-1), "client_uuid": nil})
	mustUpdate(t, db, "a3", taskdb.Record{"engine_uuid": []any{"e1"}, "client_uuid": int64(7)})
	for _, c := range []findCase{
		{"pending", `{"completed":null}`, []string{"a3", "a5"}},
		{"done", `{"completed":{"$ne":null}}`, []string{"a1", "a2", "a4"}},
		{"client", `{"client_uuid":"c2"}`, []string{"a2", "a4"}},
		{"client null", `{"client_uuid":null}`, []string{"a5"}},
		{"client int", `{"client_uuid":7}`, []string{"a3"}},
		{"engine", `{"engine_uuid":"e1"}`, []string{"a1", "a2", "a3", "a4", "a5"}},
		{"engine e2", `{"engine_uuid":"e2"}`, nil},
		{"submitted", `{"submitted":{"$lt":` + date(at(0)) + `}}`, []string{"a5"}},
	} {
		if got := ids(mustFind(t, db, c.q)); !equalIDs(got, c.want) {
			t.Errorf("%s: FindRecords(%s) = %v, want %v", c.name, c.q, got, c.want)
		}
	}
	checkHistory(t, db, "a5", "a1", "a2", "a4")
}

func testFindManyIDs(t *testing.T, db taskdb.DB) {
	loadFixture(t, db)
	list := make([]any, 0, 20_000)
	for i := range 20_000 {
		list = append(list, fmt.Sprintf("x%d", i))
	}
	list[777], list[12_345] = "a4", "a1"
	f, err := query.Parse(map[string]any{"msg_id": map[string]any{"$in": list}})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := db.FindRecords(t.Context(), f, []string{"msg_id"})
	if err != nil {
		t.Fatal(err)
	}
	if got := docIDs(rs); !equalIDs(got, []string{"a1", "a4"}) {
		t.Errorf("$in 20,000 ids = %v, want [a1 a4]", got)
	}
}

func testProjection(t *testing.T, db taskdb.DB) {
	loadFixture(t, db)
	keys := []string{"submitted", "completed"}
	rs := mustFind(t, db, `{"client_uuid":"c1"}`, keys...)
	if !slices.Equal(keys, []string{"submitted", "completed"}) {
		t.Errorf("FindRecords modified keys: %v", keys) // §10.7
	}
	want := []taskdb.Record{
		{"msg_id": "a1", "submitted": at(0), "completed": at(2)},
		{"msg_id": "a2", "submitted": at(1), "completed": nil},
		{"msg_id": "a5", "submitted": at(2), "completed": at(4)},
	}
	if len(rs) != len(want) {
		t.Fatalf("got %d records, want %d", len(rs), len(want))
	}
	for i := range want {
		if d := diff(rs[i], want[i]); d != "" {
			t.Errorf("record %d:%s", i, d)
		}
	}

	rs = mustFind(t, db, `{}`, "score", "msg_id", "buffers")
	for _, r := range rs {
		wantLen := 2
		if r["msg_id"] == "a1" {
			wantLen = 3
			if r["score"] != 2.5 {
				t.Errorf("a1 score = %v", r["score"])
			}
			if !same(r["buffers"], []any{[]byte("buffer-a1")}) {
				t.Errorf("a1 buffers = %#v", r["buffers"])
			}
		}
		if len(r) != wantLen {
			t.Errorf("%v: got keys %v, want msg_id, buffers and score only where set", r["msg_id"], keysOf(r))
		}
	}

	full := mustFind(t, db, `{"msg_id":"a4"}`)
	for _, keys := range [][]string{nil, {}} {
		rs := mustFind(t, db, `{"msg_id":"a4"}`, keys...)
		if len(rs) != 1 || diff(rs[0], full[0]) != "" || len(rs[0]) != len(taskdb.SchemaKeys)+2 {
			t.Errorf("keys %#v: want the full record with %d keys, got %v", keys, len(taskdb.SchemaKeys)+2, keysOf(rs[0]))
		}
	}

	for _, bad := range []string{"nosuch", "Submitted", "header.msg_type"} {
		_, err := db.FindRecords(t.Context(), query.MustParse(`{}`), []string{"msg_id", bad})
		if !errors.Is(err, taskdb.ErrInvalidQuery) || !strings.Contains(err.Error(), bad) {
			t.Errorf("keys [msg_id %s]: %v, want ErrInvalidQuery naming the key", bad, err)
		}
	}
}

func keysOf(r taskdb.Record) []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// testReferenceDefects pins each defect of ipyparallel's DictDB and
// SQLiteDB query handling (protocol reference §10) as a case we get right.
func testReferenceDefects(t *testing.T, db taskdb.DB) {
	loadFixture(t, db)
	for _, c := range []struct {
		defect string
		findCase
	}{
		{"§10.1 $gt was $lt", findCase{"gt", `{"submitted":{"$gt":` + date(at(1)) + `}}`, []string{"a4", "a5"}}},
		{"§10.2 equality used the last value", findCase{"engine+completed", `{"engine_uuid":"e1","completed":{"$ne":null}}`, []string{"a1", "a4", "a5"}}},
		{"§10.2 equality used the last value", findCase{"engine+queue", `{"engine_uuid":"e1","queue":"task"}`, []string{"a1", "a4", "a5"}}},
		{"§10.2 purge by engine deleted nothing", findCase{"purge query", `{"engine_uuid":"e2","completed":{"$ne":null}}`, nil}},
		{"§10.3 $all inverted, substring", findCase{"all", `{"queue":{"$all":["tasks","XtaskX"]}}`, nil}},
		{"§10.3 $all inverted, substring", findCase{"all sub", `{"queue":{"$all":["tas"]}}`, nil}},
		{"§10.4 ordering raised on None", findCase{"gt none", `{"completed":{"$gt":` + date(at(0)) + `}}`, []string{"a1", "a4", "a5"}}},
		{"§10.4 operator order mattered", findCase{"gt then ne", `{"submitted":{"$gt":` + date(at(0)) + `,"$ne":null}}`, []string{"a2", "a4", "a5"}}},
		{"§10.4 ordering raised on mixed types", findCase{"mixed", `{"n":{"$lt":5}}`, []string{"a1", "a2"}}},
		{"§8.3 1 == True", findCase{"bool", `{"n":1}`, nil}},
		{"§8.3 a document value raised KeyError", findCase{"doc", `{"result_content":{"status":"ok"}}`, []string{"a1"}}},
		{"§10.7 SQLite {} was an SQL error", findCase{"empty", `{}`, []string{"a1", "a2", "a3", "a4", "a5"}}},
		{"§10.7 SQLite $in [] was a syntax error", findCase{"in empty", `{"msg_id":{"$in":[]}}`, nil}},
		{"§10.7 SQLite list operand crashed", findCase{"list operand", `{"msg_id":{"$ne":["a1"]}}`, []string{"a1", "a2", "a3", "a4", "a5"}}},
		{"§10.7 SQLite compared dates as text", findCase{"zones", `{"submitted":{"$lt":` + date(at(2).In(time.FixedZone("+09:00", 9*3600))) + `}}`, []string{"a1", "a2"}}},
		{"§8.4 SQLite $ne dropped NULL rows", findCase{"ne keeps null", `{"engine_uuid":{"$ne":"e1"}}`, []string{"a2", "a3"}}},
	} {
		t.Run(c.defect+"/"+c.name, func(t *testing.T) {
			if got := ids(mustFind(t, db, c.q)); !equalIDs(got, c.want) {
				t.Errorf("FindRecords(%s) = %v, want %v", c.q, got, c.want)
			}
		})
	}
	t.Run("§10.7 SQLite returned error and execute_result as str", func(t *testing.T) {
		r := mustGet(t, db, "a4")
		if _, ok := r["error"].(map[string]any); !ok {
			t.Errorf("error = %#v, want a document", r["error"])
		}
		r = mustGet(t, db, "a5")
		if _, ok := r["execute_result"].(map[string]any); !ok {
			t.Errorf("execute_result = %#v, want a document", r["execute_result"])
		}
	})
}

// testConcurrent runs writers and readers at once; it is meaningful under
// the race detector, and checks the end state.
func testConcurrent(t *testing.T, db taskdb.DB) {
	const writers, perWriter, readers = 4, 150, 4
	ctx := t.Context()
	var wg sync.WaitGroup
	var done atomic.Bool
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id := fmt.Sprintf("w%d-%d", w, i)
				rec := taskdb.Record{"submitted": at(i), "client_uuid": fmt.Sprintf("c%d", w), "header": map[string]any{"i": int64(i)}}
				if err := db.AddRecord(ctx, id, rec); err != nil {
					errs <- err
					return
				}
				if err := db.UpdateRecord(ctx, id, taskdb.Record{"completed": at(i + 1), "result_buffers": []any{[]byte("r")}}); err != nil {
					errs <- err
					return
				}
				if i%10 == 0 {
					if err := db.DropRecord(ctx, id); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	var rg sync.WaitGroup
	for r := range readers {
		rg.Go(func() {
			f := query.MustParse(fmt.Sprintf(`{"client_uuid":"c%d","completed":{"$ne":null}}`, r))
			for !done.Load() {
				rs, err := db.FindRecords(ctx, f, nil)
				if err != nil {
					errs <- err
					return
				}
				for _, rec := range rs {
					rec.Get("header").(taskdb.Doc)[0].Value = int64(-1) // results are ours to mutate
				}
				if _, err := db.History(ctx); err != nil {
					errs <- err
					return
				}
				if _, err := db.GetRecord(ctx, fmt.Sprintf("w%d-1", r)); err != nil && !errors.Is(err, taskdb.ErrNotFound) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := writers * (perWriter - perWriter/10)
	h, err := db.History(ctx)
	if err != nil || len(h) != want {
		t.Fatalf("History: %d ids, %v; want %d", len(h), err, want)
	}
	rs := mustFind(t, db, `{"completed":{"$ne":null}}`, "header")
	if len(rs) != want {
		t.Errorf("completed: %d, want %d", len(rs), want)
	}
	for _, r := range rs {
		if i, _ := r["header"].(map[string]any)["i"].(int64); i < 0 {
			t.Fatalf("a reader's mutation reached the store: %v", r)
		}
	}
}
