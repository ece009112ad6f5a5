package dictdb_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// TestIndexesMatchModel applies random adds, updates and drops to a DB
// and to a plain map, and checks after each step that every query the
// planner serves from an index returns what matching the map finds, in
// insertion order, and that History agrees.
func TestIndexesMatchModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { testModel(t, seed) })
	}
}

func testModel(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 11))
	db := dictdb.New(dictdb.Options{})
	defer db.Close()
	model := map[string]taskdb.Record{}
	var order []string // insertion order of the ids in model

	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	value := func(key string) any {
		switch key {
		case "submitted", "completed":
			if rng.IntN(4) == 0 {
				return nil
			}
			return at(rng.IntN(20))
		case "client_uuid", "engine_uuid":
			switch rng.IntN(8) {
			case 0:
				return nil
			case 1:
				return []any{fmt.Sprintf("u%d", rng.IntN(3))} // an odd value: an array
			case 2:
				return int64(rng.IntN(3))
			}
			return fmt.Sprintf("u%d", rng.IntN(3))
		}
		return fmt.Sprintf("x%d", rng.IntN(3))
	}
	keys := []string{"submitted", "completed", "client_uuid", "engine_uuid", "queue"}
	randomFields := func() taskdb.Record {
		r := taskdb.Record{}
		for _, k := range keys {
			if rng.IntN(2) == 0 {
				r[k] = value(k)
			}
		}
		return r
	}
	var queries []*query.Filter
	for _, q := range []string{
		`{}`, `{"completed":null}`, `{"completed":{"$exists":false},"client_uuid":"u1"}`,
		`{"client_uuid":"u1"}`, `{"client_uuid":{"$in":["u0","u2"]}}`, `{"engine_uuid":"u2","completed":{"$ne":null}}`,
		`{"engine_uuid":{"$in":["u1"]},"queue":"x1"}`, `{"client_uuid":0}`,
		`{"msg_id":{"$in":["m1","m3","m5","m8","m13","m21"]}}`, `{"msg_id":"m2"}`,
		`{"submitted":{"$lt":{"$date":"2024-01-02T03:04:15Z"}}}`,
		`{"submitted":{"$gte":{"$date":"2024-01-02T03:04:10Z"},"$lte":{"$date":"2024-01-02T03:04:12Z"}}}`,
		`{"submitted":{"$date":"2024-01-02T03:04:09Z"}}`, `{"submitted":{"$gt":{"$date":"2024-01-02T03:04:15Z"}},"completed":null}`,
		`{"$and":[{"completed":{"$in":[null]}},{"engine_uuid":{"$in":["u1","u2"]}}]}`, `{"completed":{"$exists":false},"queue":"x1"}`,
		`{"$or":[{"completed":null},{"queue":"x1"}],"client_uuid":"u0"}`,
	} {
		queries = append(queries, query.MustParse(q))
	}

	for step := range 2500 {
		id := fmt.Sprintf("m%d", rng.IntN(60))
		switch op := rng.IntN(10); {
		case op < 4:
			rec := randomFields()
			err := db.AddRecord(ctx, id, rec)
			if _, exists := model[id]; exists != errors.Is(err, taskdb.ErrExists) {
				t.Fatalf("step %d: add %s: %v (in model: %v)", step, id, err, exists)
			}
			if err == nil {
				full := taskdb.EmptyRecord(id)
				maps.Copy(full, rec)
				model[id] = full
				order = append(order, id)
			}
		case op < 8:
			fields := randomFields()
			err := db.UpdateRecord(ctx, id, fields)
			if _, exists := model[id]; exists == errors.Is(err, taskdb.ErrNotFound) {
				t.Fatalf("step %d: update %s: %v (in model: %v)", step, id, err, exists)
			}
			if err == nil {
				maps.Copy(model[id], fields)
			}
		case op < 9:
			err := db.DropRecord(ctx, id)
			if _, exists := model[id]; exists == errors.Is(err, taskdb.ErrNotFound) {
				t.Fatalf("step %d: drop %s: %v (in model: %v)", step, id, err, exists)
			}
			delete(model, id)
			order = slices.DeleteFunc(order, func(s string) bool { return s == id })
		default:
			q := queries[rng.IntN(len(queries))]
			if err := db.DropMatchingRecords(ctx, q); err != nil {
				t.Fatal(err)
			}
			for id, r := range model {
				if q.Match(r) {
					delete(model, id)
				}
			}
			order = slices.DeleteFunc(order, func(s string) bool { _, ok := model[s]; return !ok })
		}
		for _, q := range queries {
			rs, err := db.FindRecords(ctx, q, []string{"msg_id"})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, id := range order {
				if q.Match(model[id]) {
					want = append(want, id)
				}
			}
			if got := idsOf(rs); !slices.Equal(got, want) {
				t.Fatalf("step %d: %s = %v, model says %v", step, q, got, want)
			}
		}
		h, err := db.History(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, id := range order {
			if model[id]["submitted"] != nil {
				want = append(want, id)
			}
		}
		slices.SortStableFunc(want, func(a, b string) int {
			return model[a]["submitted"].(time.Time).Compare(model[b]["submitted"].(time.Time))
		})
		if !slices.Equal(h, want) {
			t.Fatalf("step %d: History = %v, model says %v", step, h, want)
		}
	}
}

func idsOf(rs []taskdb.Doc) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Get("msg_id").(string))
	}
	return out
}
