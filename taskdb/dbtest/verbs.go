package dbtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// fullRecord returns a record setting every schema key, as the hub builds
// one for a completed task.
func fullRecord(id string) taskdb.Record {
	return taskdb.Record{
		"msg_id":          id,
		"header":          map[string]any{"msg_id": id, "msg_type": "apply_request", "username": "u", "session": "c1", "date": t0, "version": "5.3"},
		"metadata":        map[string]any{"after": []any{}, "retries": int64(0)},
		"content":         map[string]any{"a": int64(5)},
		"buffers":         []any{[]byte("buf0"), []byte{}},
		"submitted":       t0,
		"client_uuid":     "c1",
		"engine_uuid":     "e1",
		"started":         at(1),
		"completed":       at(2),
		"resubmitted":     nil,
		"received":        at(3),
		"result_header":   map[string]any{"msg_type": "apply_reply", "date": at(2)},
		"result_metadata": map[string]any{"status": "ok", "engine": "e1"},
		"result_content":  map[string]any{"status": "ok", "pi": 3.25, "big": int64(1) << 60},
		"result_buffers":  []any{[]byte("result")},
		"queue":           "task",
		"execute_input":   "1+1",
		"execute_result":  map[string]any{"data": map[string]any{"text/plain": "2"}, "execution_count": int64(1)},
		"error":           map[string]any{"ename": "ValueError", "traceback": []any{"line 1"}},
		"stdout":          "out",
		"stderr":          "err",
	}
}

func testAddGet(t *testing.T, db taskdb.DB) {
	want := fullRecord("m1")
	mustAdd(t, db, "m1", fullRecord("m1"))
	got := mustGet(t, db, "m1")
	if d := diff(got, want); d != "" {
		t.Errorf("GetRecord differs from what was added (execute_result and error must stay documents):%s", d)
	}
}

func testAddDefaults(t *testing.T, db taskdb.DB) {
	mustAdd(t, db, "m1", taskdb.Record{"submitted": t0})
	mustAdd(t, db, "m2", nil)
	want := taskdb.EmptyRecord("m1")
	want["submitted"] = t0
	if d := diff(mustGet(t, db, "m1"), want); d != "" {
		t.Errorf("missing schema keys not filled with defaults:%s", d)
	}
	if d := diff(mustGet(t, db, "m2"), taskdb.EmptyRecord("m2")); d != "" {
		t.Errorf("nil record not stored as defaults:%s", d)
	}
}

func testAddDuplicate(t *testing.T, db taskdb.DB) {
	mustAdd(t, db, "m1", taskdb.Record{"stdout": "first"})
	err := db.AddRecord(t.Context(), "m1", taskdb.Record{"stdout": "second"})
	if !errors.Is(err, taskdb.ErrExists) {
		t.Fatalf("second AddRecord: %v, want ErrExists", err)
	}
	if got := mustGet(t, db, "m1")["stdout"]; got != "first" {
		t.Errorf("duplicate add changed the record: stdout = %v", got)
	}
}

func testAddInvalid(t *testing.T, db taskdb.DB) {
	for _, c := range []struct {
		name string
		rec  taskdb.Record
		key  string // the error must name it
	}{
		{"string time", taskdb.Record{"submitted": "2024-01-02T03:04:05Z"}, "submitted"},
		{"int time", taskdb.Record{"completed": int64(5)}, "completed"},
		{"channel", taskdb.Record{"header": map[string]any{"c": make(chan int)}}, "header"},
		{"struct", taskdb.Record{"extra": struct{}{}}, "extra"},
		{"pointer", taskdb.Record{"content": new(int)}, "content"},
		{"time out of range", taskdb.Record{"started": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "started"},
		{"other msg_id", taskdb.Record{"msg_id": "other"}, "msg_id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := db.AddRecord(t.Context(), "bad", c.rec)
			if !errors.Is(err, taskdb.ErrInvalidRecord) {
				t.Fatalf("AddRecord: %v, want ErrInvalidRecord", err)
			}
			if !strings.Contains(err.Error(), c.key) {
				t.Errorf("error %q does not name key %q", err, c.key)
			}
			if _, err := db.GetRecord(t.Context(), "bad"); !errors.Is(err, taskdb.ErrNotFound) {
				t.Errorf("invalid record was stored: GetRecord: %v", err)
			}
		})
	}
}

type myString string

func testNormalize(t *testing.T, db taskdb.DB) {
	zone := time.FixedZone("+05:00", 5*3600)
	local := time.Date(2024, 1, 2, 8, 4, 5, 123_456_789, zone)
	mustAdd(t, db, "m1", taskdb.Record{
		"submitted": local,
		"buffers":   [][]byte{[]byte("a"), nil},
		"header": taskdb.Record{
			"i": 3, "i8": int8(-4), "i16": int16(5), "i32": int32(6), "u": uint(7), "u8": uint8(8),
			"u16": uint16(9), "u32": uint32(10), "u64": uint64(11), "huge": uint64(1<<63 + 2048),
			"f32":    float32(1.5),
			"ss":     []string{"x", "y"},
			"ms":     map[string]string{"k": "v"},
			"named":  myString("n"),
			"nested": taskdb.Record{"deep": []int{1, 2}},
			"date":   local,
		},
	})
	wantTime := local.UTC().Truncate(precision(db))
	want := map[string]any{
		"i": int64(3), "i8": int64(-4), "i16": int64(5), "i32": int64(6), "u": int64(7), "u8": int64(8),
		"u16": int64(9), "u32": int64(10), "u64": int64(11), "huge": float64(1<<63 + 2048),
		"f32":    1.5,
		"ss":     []any{"x", "y"},
		"ms":     map[string]any{"k": "v"},
		"named":  "n",
		"nested": map[string]any{"deep": []any{int64(1), int64(2)}},
		"date":   wantTime,
	}
	got := mustGet(t, db, "m1")
	if !same(got["header"], want) {
		t.Errorf("header = %#v\nwant %#v", got["header"], want)
	}
	if !same(got["submitted"], wantTime) {
		t.Errorf("submitted = %#v, want %v (UTC, truncated)", got["submitted"], wantTime)
	}
	// Before 1970 too, truncation goes toward the past.
	old := time.Date(1969, 12, 31, 23, 59, 59, 999_999_500, time.UTC)
	mustUpdate(t, db, "m1", taskdb.Record{"started": old, "content": map[string]any{"t": old}})
	got = mustGet(t, db, "m1")
	if want := old.Truncate(precision(db)); !same(got["started"], want) || !same(got["content"], map[string]any{"t": want}) {
		t.Errorf("started = %v, content = %v; want %v", got["started"], got["content"], want)
	}
	if !same(got["buffers"], []any{[]byte("a"), []byte(nil)}) && !same(got["buffers"], []any{[]byte("a"), []byte{}}) {
		t.Errorf("buffers = %#v, want []any of []byte", got["buffers"])
	}
}

func testGetMissing(t *testing.T, db taskdb.DB) {
	_, err := db.GetRecord(t.Context(), "nope")
	if !errors.Is(err, taskdb.ErrNotFound) || errors.Is(err, taskdb.ErrCulled) {
		t.Errorf("GetRecord(missing): %v, want ErrNotFound and not ErrCulled", err)
	}
}

func testUpdate(t *testing.T, db taskdb.DB) {
	mustAdd(t, db, "m1", taskdb.Record{"submitted": t0, "client_uuid": "c1", "header": map[string]any{"a": int64(1)}})
	before := mustGet(t, db, "m1")
	fields := taskdb.Record{
		"completed":      at(5),
		"stdout":         "hello there",
		"header":         map[string]any{"b": int64(2)},
		"result_buffers": [][]byte{[]byte("r")},
		"display_data":   []any{map[string]any{"text/plain": "x"}}, // §10.15: any extra key
	}
	mustUpdate(t, db, "m1", fields)
	want := before
	want["completed"] = at(5)
	want["stdout"] = "hello there"
	want["header"] = map[string]any{"b": int64(2)}
	want["result_buffers"] = []any{[]byte("r")}
	want["display_data"] = []any{map[string]any{"text/plain": "x"}}
	if d := diff(mustGet(t, db, "m1"), want); d != "" {
		t.Errorf("after update:%s", d)
	}
	mustUpdate(t, db, "m1", taskdb.Record{"completed": nil, "msg_id": "m1", "display_data": nil})
	want["completed"] = nil
	want["display_data"] = nil
	if d := diff(mustGet(t, db, "m1"), want); d != "" {
		t.Errorf("after setting null:%s", d)
	}
}

func testUpdateInvalid(t *testing.T, db taskdb.DB) {
	mustAdd(t, db, "m1", taskdb.Record{"submitted": t0})
	for _, fields := range []taskdb.Record{
		{"completed": "soon"},
		{"msg_id": "m2"},
		{"stdout": "ok", "content": make(chan int)},
	} {
		if err := db.UpdateRecord(t.Context(), "m1", fields); !errors.Is(err, taskdb.ErrInvalidRecord) {
			t.Errorf("UpdateRecord(%v): %v, want ErrInvalidRecord", fields, err)
		}
	}
	want := taskdb.EmptyRecord("m1")
	want["submitted"] = t0
	if d := diff(mustGet(t, db, "m1"), want); d != "" {
		t.Errorf("a rejected update changed the record:%s", d)
	}
}

func testUpdateMissing(t *testing.T, db taskdb.DB) {
	// §10.7: SQLite silently ignored updates of missing ids.
	err := db.UpdateRecord(t.Context(), "nope", taskdb.Record{"stdout": "x"})
	if !errors.Is(err, taskdb.ErrNotFound) {
		t.Errorf("UpdateRecord(missing): %v, want ErrNotFound", err)
	}
	if _, err := db.GetRecord(t.Context(), "nope"); !errors.Is(err, taskdb.ErrNotFound) {
		t.Errorf("update of a missing id created it: %v", err)
	}
}

func testDrop(t *testing.T, db taskdb.DB) {
	mustAdd(t, db, "m1", taskdb.Record{"submitted": t0, "client_uuid": "c1"})
	mustAdd(t, db, "m2", taskdb.Record{"submitted": at(1), "client_uuid": "c1"})
	if err := db.DropRecord(t.Context(), "m1"); err != nil {
		t.Fatalf("DropRecord: %v", err)
	}
	if _, err := db.GetRecord(t.Context(), "m1"); !errors.Is(err, taskdb.ErrNotFound) {
		t.Errorf("GetRecord(dropped): %v, want ErrNotFound", err)
	}
	if err := db.DropRecord(t.Context(), "m1"); !errors.Is(err, taskdb.ErrNotFound) {
		t.Errorf("DropRecord(dropped): %v, want ErrNotFound", err)
	}
	if got := ids(mustFind(t, db, `{"client_uuid":"c1"}`)); !equalIDs(got, []string{"m2"}) {
		t.Errorf("find after drop: %v, want [m2]", got)
	}
	checkHistory(t, db, "m2")
	mustAdd(t, db, "m1", taskdb.Record{"submitted": at(2)}) // the id is free again
	checkHistory(t, db, "m2", "m1")
}

func testDropMatching(t *testing.T, db taskdb.DB) {
	loadFixture(t, db)
	ctx := t.Context()
	// purge_request "all": every completed record.
	if err := db.DropMatchingRecords(ctx, query.MustParse(`{"completed":{"$ne":null}}`)); err != nil {
		t.Fatal(err)
	}
	if got := ids(mustFind(t, db, `{}`)); !equalIDs(got, []string{"a2", "a3"}) {
		t.Errorf("left after dropping completed: %v, want [a2 a3]", got)
	}
	checkHistory(t, db, "a2")
	// §4.3: a purge by targets only drops {msg_id: {$in: []}}, which must work and drop nothing.
	if err := db.DropMatchingRecords(ctx, query.MustParse(`{"msg_id":{"$in":[]}}`)); err != nil {
		t.Errorf("drop $in []: %v", err)
	}
	if got := ids(mustFind(t, db, `{}`)); len(got) != 2 {
		t.Errorf("drop $in [] dropped records: left %v", got)
	}
	if err := db.DropMatchingRecords(ctx, query.MustParse(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := mustFind(t, db, `{}`); len(got) != 0 {
		t.Errorf("drop {} left %v", ids(got))
	}
}

func testIsolation(t *testing.T, db taskdb.DB) {
	buf := []byte("abc")
	header := map[string]any{"msg_type": "apply_request", "list": []any{int64(1)}}
	rec := taskdb.Record{"header": header, "buffers": []any{buf}, "submitted": t0}
	mustAdd(t, db, "m1", rec)
	want := mustGet(t, db, "m1")

	// Mutate what was passed in.
	buf[0] = 'X'
	header["msg_type"] = "changed"
	header["list"].([]any)[0] = int64(99)
	rec["stdout"] = "changed"
	if d := diff(mustGet(t, db, "m1"), want); d != "" {
		t.Errorf("mutating the added record changed the store:%s", d)
	}

	// Mutate what came out.
	got := mustGet(t, db, "m1")
	got["header"].(map[string]any)["msg_type"] = "changed"
	got["header"].(map[string]any)["list"].([]any)[0] = int64(99)
	got["buffers"].([]any)[0].([]byte)[0] = 'X'
	found := mustFind(t, db, `{}`)
	found[0]["header"].(map[string]any)["msg_type"] = "changed"
	found[0]["buffers"].([]any)[0].([]byte)[1] = 'X'
	if d := diff(mustGet(t, db, "m1"), want); d != "" {
		t.Errorf("mutating a returned record changed the store:%s", d)
	}

	// Mutate the fields of an update.
	fields := taskdb.Record{"result_content": map[string]any{"status": "ok"}}
	mustUpdate(t, db, "m1", fields)
	fields["result_content"].(map[string]any)["status"] = "changed"
	if got := mustGet(t, db, "m1")["result_content"]; !same(got, map[string]any{"status": "ok"}) {
		t.Errorf("mutating update fields changed the store: %v", got)
	}
}

func testHistory(t *testing.T, db taskdb.DB) {
	checkHistory(t, db)
	mustAdd(t, db, "late", taskdb.Record{"submitted": at(10)})
	mustAdd(t, db, "early", taskdb.Record{"submitted": at(-10)})
	mustAdd(t, db, "none", taskdb.Record{})
	mustAdd(t, db, "tie1", taskdb.Record{"submitted": at(0)})
	mustAdd(t, db, "tie2", taskdb.Record{"submitted": at(0)})
	zone := time.FixedZone("+01:00", 3600)
	mustAdd(t, db, "zoned", taskdb.Record{"submitted": at(5).In(zone)}) // an instant, not text
	checkHistory(t, db, "early", "tie1", "tie2", "zoned", "late")
	mustUpdate(t, db, "early", taskdb.Record{"submitted": at(20)})
	mustUpdate(t, db, "none", taskdb.Record{"submitted": at(1)})
	mustUpdate(t, db, "tie1", taskdb.Record{"submitted": nil})
	checkHistory(t, db, "tie2", "none", "zoned", "late", "early")
}

func checkHistory(t *testing.T, db taskdb.DB, want ...string) {
	t.Helper()
	got, err := db.History(t.Context())
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if !equalIDs(got, want) {
		t.Errorf("History = %v, want %v", got, want)
	}
}

func equalIDs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testIndependent(t *testing.T, db, other taskdb.DB) {
	t.Cleanup(func() { other.Close() })
	// §10.5: ipyparallel's DictDB shared state between instances.
	mustAdd(t, db, "m1", taskdb.Record{"submitted": t0})
	if _, err := other.GetRecord(t.Context(), "m1"); !errors.Is(err, taskdb.ErrNotFound) {
		t.Errorf("a second DB sees the first one's record: %v", err)
	}
	mustAdd(t, other, "m1", taskdb.Record{"submitted": t0})
}

func testCanceled(t *testing.T, db taskdb.DB) {
	mustAdd(t, db, "m1", taskdb.Record{"submitted": t0})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, err := range callEvery(ctx, db) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", name, err)
		}
	}
	if got := mustGet(t, db, "m1"); got["stdout"] != "" {
		t.Errorf("a canceled update was applied: stdout = %v", got["stdout"])
	}
	if _, err := db.GetRecord(t.Context(), "m2"); !errors.Is(err, taskdb.ErrNotFound) {
		t.Errorf("a canceled add was applied: %v", err)
	}
}

// callEvery calls each method of db once with ctx (adding m2, updating and
// dropping m1) and returns their errors by method name.
func callEvery(ctx context.Context, db taskdb.DB) map[string]error {
	_, errGet := db.GetRecord(ctx, "m1")
	_, errFind := db.FindRecords(ctx, query.MustParse(`{}`), nil)
	_, errHist := db.History(ctx)
	return map[string]error{
		"AddRecord":           db.AddRecord(ctx, "m2", nil),
		"UpdateRecord":        db.UpdateRecord(ctx, "m1", taskdb.Record{"stdout": "x"}),
		"DropRecord":          db.DropRecord(ctx, "m1"),
		"DropMatchingRecords": db.DropMatchingRecords(ctx, query.MustParse(`{}`)),
		"GetRecord":           errGet,
		"FindRecords":         errFind,
		"History":             errHist,
	}
}

func testClosed(t *testing.T, db taskdb.DB) {
	mustAdd(t, db, "m1", nil)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	for name, err := range callEvery(ctx, db) {
		if !errors.Is(err, taskdb.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// testEmptyValues: empty documents, arrays and byte strings read back
// empty, not null, also when they are the first values a read decodes.
func testEmptyValues(t *testing.T, db taskdb.DB) {
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
