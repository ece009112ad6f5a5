package mongodb

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// TestServerFilter checks what is sent to the server: the conditions it
// can evaluate at least as loosely as taskdb, nothing else.
func TestServerFilter(t *testing.T) {
	for _, c := range []struct{ q, want string }{
		{`{}`, `{}`},
		{`{"msg_id":"a"}`, `{"_id": "a"}`},
		{`{"msg_id":{"$in":["a","b"]},"completed":null}`, `{"completed": null, "_id": {"$in": ["a","b"]}}`},
		{`{"completed":{"$exists":false}}`, `{"completed": null}`},
		{`{"n":{"$gte":1,"$lt":2.5}}`, `{"$and": [{"n": {"$gte": {"$numberLong":"1"}}},{"n": {"$lt": {"$numberDouble":"2.5"}}}]}`},
		{`{"$and":[{"n":{"$gt":1}}],"n":{"$lt":9}}`, `{"$and": [{"n": {"$gt": {"$numberLong":"1"}}},{"n": {"$lt": {"$numberLong":"9"}}}]}`},
		{`{"submitted":{"$lt":{"$date":"2024-01-02T03:04:05.123400Z"}}}`, `{"submitted": {"$lte": {"$date":{"$numberLong":"1704164645124"}}}}`},
		{`{"submitted":{"$gt":{"$date":"2024-01-02T03:04:05.123400Z"}}}`, `{"submitted": {"$gte": {"$date":{"$numberLong":"1704164645123"}}}}`},
		{`{"_x":1,"a.b":1,"c%d":"v"}`, `{"%5Fx": {"$numberLong":"1"}, "c%25d": "v"}`},
		{`{"tags":["x","y"]}`, `{"tags": ["x","y"]}`},
		{`{"tags":{"$in":[["x"],"y"]}}`, `{"tags": {"$in": [["x"],"y"]}}`},
		// Left to the matcher: documents, NaN, byte ranges, negations, $or.
		{`{"content":{"a":1}}`, `{}`},
		{`{"n":{"$gt":{"$numberDouble":"NaN"}}}`, `{}`},
		{`{"buffers":{"$gt":{"$binary":"AA=="}}}`, `{}`},
		{`{"n":{"$ne":1},"$or":[{"a":1},{"b":1}]}`, `{}`},
	} {
		f, err := query.ParseJSON([]byte(c.q))
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		got, err := bson.MarshalExtJSON(serverFilter(f), true, false)
		if err != nil {
			t.Fatal(err)
		}
		var want bson.D
		if err := bson.UnmarshalExtJSON([]byte(c.want), true, &want); err != nil {
			t.Fatalf("want %s: %v", c.want, err)
		}
		wantJSON, _ := bson.MarshalExtJSON(want, true, false)
		if string(got) != string(wantJSON) {
			t.Errorf("serverFilter(%s)\n got %s\nwant %s", c.q, got, wantJSON)
		}
	}
}

// TestServerFilterLoses checks against a real server that the server
// filter loses no record the matcher would take, on values where
// MongoDB's and taskdb's orders differ: mixed types in one field, NaN,
// huge integers beside doubles, byte strings of different lengths, times
// finer than a millisecond, arrays and nulls.
func TestServerFilterLoses(t *testing.T) {
	db := open(t, Options{})
	ctx := t.Context()
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 123_000_000, time.UTC)
	vals := []any{
		nil, int64(1), int64(math.MaxInt64), float64(1 << 63), 1.0, 1.5, math.NaN(), math.Inf(-1),
		"", "a", "b", "é", true, false, []byte{}, []byte{9}, []byte{1, 2},
		t0, t0.Add(time.Millisecond), []any{int64(1), "a"}, []any{}, []any{nil},
		map[string]any{"k": int64(1)},
	}
	stored := 1
	if err := db.AddRecord(ctx, "none", taskdb.Record{"submitted": t0}); err != nil { // no x at all
		t.Fatal(err)
	}
	for i, v := range vals {
		if !accepts(t, db, v) {
			continue
		}
		if err := db.AddRecord(ctx, fmt.Sprintf("r%02d", i), taskdb.Record{"submitted": t0, "x": v}); err != nil {
			t.Fatal(err)
		}
		stored++
	}
	all, err := db.FindRecords(ctx, nil, nil)
	if err != nil || len(all) != stored {
		t.Fatalf("FindRecords({}) = %d records, %v; want %d", len(all), err, stored)
	}
	tick := date(t0.Add(400 * time.Microsecond))
	for _, q := range []string{
		`{"x":null}`, `{"x":{"$exists":true}}`, `{"x":{"$ne":null}}`, `{"x":1}`, `{"x":1.0}`,
		`{"x":{"$in":[1,"a",null]}}`, `{"x":{"$gt":1}}`, `{"x":{"$gte":1}}`, `{"x":{"$lt":2}}`,
		`{"x":{"$lte":9223372036854775807}}`, `{"x":{"$gt":9223372036854775807}}`, `{"x":{"$gte":9.223372036854775807e18}}`,
		`{"x":{"$lt":"b"}}`, `{"x":{"$gte":"a","$lt":"z"}}`, `{"x":{"$gt":false}}`, `{"x":{"$lte":true}}`,
		`{"x":{"$gt":` + tick + `}}`, `{"x":{"$lt":` + tick + `}}`, `{"x":{"$lte":` + date(t0) + `}}`, `{"x":` + date(t0) + `}`,
		`{"x":{"$gt":-1e308}}`, `{"x":{"$lt":{"$numberDouble":"NaN"}}}`, `{"x":{"$in":[[1,"a"]]}}`, `{"x":[]}`, `{"x":{"k":1}}`,
		`{"x":{"$in":[{"$binary":"CQ=="}]}}`,
		`{"$and":[{"x":{"$gte":1}},{"x":{"$lte":1.5}}]}`,
	} {
		f, err := query.ParseJSON([]byte(q))
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var want []string
		for _, d := range all {
			if f.MatchDoc(d) {
				want = append(want, d.Get(taskdb.KeyMsgID).(string))
			}
		}
		got, err := db.FindRecords(ctx, f, []string{"x"})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var gotIDs []string
		for _, d := range got {
			gotIDs = append(gotIDs, d.Get(taskdb.KeyMsgID).(string))
		}
		if !slices.Equal(gotIDs, want) {
			t.Errorf("%s: server-filtered %v, matcher alone %v", q, gotIDs, want)
		}
	}
}

// date writes t as extended JSON.
func date(t time.Time) string { return fmt.Sprintf(`{"$date":%q}`, t.Format(time.RFC3339Nano)) }

// accepts reports whether the server stores v, by inserting it directly
// into a scratch collection: FerretDB refuses NaN and infinities, which
// MongoDB stores, and a refused write would stall the write queue.
func accepts(t *testing.T, db *DB, v any) bool {
	t.Helper()
	f, ok := v.(float64)
	if !ok || !math.IsNaN(f) && !math.IsInf(f, 0) {
		return true
	}
	scratch := db.coll.Database().Collection("scratch")
	if _, err := scratch.InsertOne(t.Context(), bson.D{{Key: "x", Value: v}}); err != nil {
		t.Logf("the server refuses x = %v, left out: %v", v, err)
		return false
	}
	return true
}
