package sqlitedb

import (
	"reflect"
	"strings"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dbtest"
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
	clients := make([]any, dbtest.Clients)
	for i := range clients {
		clients[i] = w.Client(i)
	}
	engine := w.Record(1)["engine_uuid"]
	cases := []struct {
		q    map[string]any
		want string
	}{
		{map[string]any{"completed": nil}, "USING INDEX tasks_pending"},
		{map[string]any{"client_uuid": w.Client(0), "completed": nil}, "USING INTEGER PRIMARY KEY"},
		{map[string]any{"engine_uuid": engine}, "USING INTEGER PRIMARY KEY"},
		{map[string]any{"client_uuid": map[string]any{"$in": clients}}, "USING INTEGER PRIMARY KEY"},
		{map[string]any{"engine_uuid": engine, "submitted": map[string]any{"$lt": w.Submitted(100)}}, "USING INTEGER PRIMARY KEY"},
		{map[string]any{"msg_id": map[string]any{"$in": []any{w.ID(1), w.ID(2)}}}, "USING INTEGER PRIMARY KEY"},
		{map[string]any{"submitted": map[string]any{"$lt": w.Submitted(100)}}, "USING INDEX tasks_history"},
	}
	for _, c := range cases {
		where, args := db.whereSQL(mustParse(t, c.q))
		if got := plan(where, args); !strings.Contains(got, c.want) {
			t.Errorf("plan of %v (WHERE %s) = %q, want %s", c.q, where, got, c.want)
		}
	}
	// The catalog serves client_uuid and engine_uuid: SQL need not index
	// them. A value that is not a string is left to the matcher (an array
	// holding the value matches).
	if err := db.UpdateRecord(t.Context(), w.ID(3), taskdb.Record{"client_uuid": []any{w.Client(0)}}); err != nil {
		t.Fatal(err)
	}
	_, args := db.whereSQL(mustParse(t, map[string]any{"client_uuid": w.Client(0)}))
	want := []any{db.cat.ids[w.ID(0)].seq, db.cat.ids[w.ID(3)].seq, db.cat.ids[w.ID(100)].seq}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("client_uuid %s selects seqs %v, want %v", w.Client(0), args, want)
	}
	var n int
	if err := db.db.QueryRowContext(t.Context(), "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN ('tasks_client', 'tasks_engine')").Scan(&n); err != nil || n != 0 {
		t.Errorf("client_uuid and engine_uuid indexes: %d, %v; want none", n, err)
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
