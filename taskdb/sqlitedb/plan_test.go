package sqlitedb

import (
	"strings"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

// TestQueryPlans pins the index each of the hub's common queries uses, so
// that a schema or translation change cannot silently turn one into a
// table scan.
func TestQueryPlans(t *testing.T) {
	db := open(t, Options{})
	w := load(t, db, 200)
	plan := func(where string, args []any) string {
		t.Helper()
		rows, err := db.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN SELECT msg_id FROM tasks WHERE "+where, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var steps []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, detail)
		}
		return strings.Join(steps, "; ")
	}
	cases := []struct {
		q    map[string]any
		want string
	}{
		{map[string]any{"completed": nil}, "USING INDEX tasks_pending"},
		{map[string]any{"client_uuid": w.Client(7), "completed": nil}, "USING INDEX tasks_client"},
		{map[string]any{"engine_uuid": "e1"}, "USING INDEX tasks_engine"},
		{map[string]any{"msg_id": map[string]any{"$in": []any{w.ID(1), w.ID(2)}}}, "USING INTEGER PRIMARY KEY"},
		{map[string]any{"submitted": map[string]any{"$lt": w.Submitted(100)}}, "USING INDEX tasks_history"},
	}
	for _, c := range cases {
		where, args := db.whereSQL(mustParse(t, c.q))
		if got := plan(where, args); !strings.Contains(got, c.want) {
			t.Errorf("plan of %v (WHERE %s) = %q, want %s", c.q, where, got, c.want)
		}
	}
	// Once a client_uuid is not a string, equality must also consider
	// BLOBs (an array holding the value matches), and still use the index.
	if err := db.UpdateRecord(t.Context(), w.ID(3), taskdb.Record{"client_uuid": []any{w.Client(7)}}); err != nil {
		t.Fatal(err)
	}
	where, args := db.whereSQL(mustParse(t, cases[1].q))
	if !strings.Contains(where, "X''") {
		t.Errorf("WHERE %s ignores BLOB client_uuid values", where)
	}
	if got := plan(where, args); !strings.Contains(got, "tasks_client") && !strings.Contains(got, "tasks_pending") {
		t.Errorf("plan with BLOBs = %q, want an index", got)
	}
}

func mustParse(t *testing.T, q map[string]any) *query.Filter {
	t.Helper()
	f, err := query.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
