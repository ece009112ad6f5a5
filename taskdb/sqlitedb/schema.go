package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/taskhub/taskhub/taskdb"
)

// SchemaVersion is the layout version recorded in the file's user_version.
// Open refuses files with another non-zero version.
const SchemaVersion = 1

// ErrIncompatible reports a database file or table that this version of
// sqlitedb did not create and will not touch.
var ErrIncompatible = errors.New("sqlitedb: incompatible database")

// Column kinds. Every schema key but msg_id is one column; extra keys
// share the extra column.
const (
	kindID    = iota // msg_id: TEXT, never null
	kindTime         // INTEGER microseconds since the Unix epoch, UTC, or NULL
	kindValue        // NULL, TEXT for a string, a msgpack BLOB for anything else
)

// column describes one column of the task table.
type column struct {
	key  string
	kind int
}

// columns lists the task table's record columns, in taskdb.SchemaKeys
// order; index i is bit i of an update's column set.
var columns = func() []column {
	cs := make([]column, len(taskdb.SchemaKeys))
	for i, k := range taskdb.SchemaKeys {
		cs[i] = column{key: k, kind: kindValue}
		if taskdb.IsTimeKey(k) {
			cs[i].kind = kindTime
		}
	}
	cs[0].kind = kindID
	return cs
}()

// colExtra is the index of the extra column, after the schema keys;
// colSeq stands for the seq column (insertion order) in column lists.
var colExtra = len(columns)

const colSeq = -1

// trackedBlobs are the indexed kindValue columns for which the DB tracks
// whether any row holds a BLOB, so that queries on them stay index-only
// when none does.
var trackedBlobs = []int{columnIndex[taskdb.KeyClientUUID], columnIndex[taskdb.KeyEngineUUID]}

// columnIndex maps a schema key to its index in columns.
var columnIndex = func() map[string]int {
	m := make(map[string]int, len(columns))
	for i, c := range columns {
		m[c.key] = i
	}
	return m
}()

// colName returns the SQL name of column i (colExtra: the extra column).
func colName(i int) string {
	switch i {
	case colExtra:
		return "extra"
	case colSeq:
		return "seq"
	}
	return columns[i].key
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// ddl returns the statements creating table t and its indexes.
func ddl(t string) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (\n\tseq INTEGER PRIMARY KEY", t)
	for _, c := range columns {
		switch c.kind {
		case kindID:
			fmt.Fprintf(&b, ",\n\t%s TEXT NOT NULL UNIQUE", c.key)
		case kindTime:
			fmt.Fprintf(&b, ",\n\t%s INTEGER", c.key)
		default: // BLOB affinity: SQLite stores text and blobs as given
			fmt.Fprintf(&b, ",\n\t%s BLOB", c.key)
		}
	}
	b.WriteString(",\n\textra BLOB\n)")
	return []string{
		b.String(),
		fmt.Sprintf("CREATE INDEX %[1]s_history ON %[1]s(submitted) WHERE submitted IS NOT NULL", t),
		fmt.Sprintf("CREATE INDEX %[1]s_pending ON %[1]s(seq) WHERE completed IS NULL", t),
		fmt.Sprintf("CREATE INDEX %[1]s_completed ON %[1]s(completed) WHERE completed IS NOT NULL", t),
		fmt.Sprintf("CREATE INDEX %[1]s_client ON %[1]s(client_uuid)", t),
		fmt.Sprintf("CREATE INDEX %[1]s_engine ON %[1]s(engine_uuid)", t),
	}
}

// migrate creates table t if missing, on a connection holding the write
// lock, and checks the file's schema version.
func migrate(ctx context.Context, conn *sql.Conn, t string) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("take the write lock: %w", err)
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // the first error is the one to report
		}
	}()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	var exists int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", t).Scan(&exists); err != nil {
		return fmt.Errorf("look for table %s: %w", t, err)
	}
	switch {
	case version != 0 && version != SchemaVersion:
		return fmt.Errorf("%w: the file has schema version %d, this build reads version %d", ErrIncompatible, version, SchemaVersion)
	case version == 0 && exists != 0:
		return fmt.Errorf("%w: table %s exists but was not created by taskhub (schema version 0)", ErrIncompatible, t)
	case exists != 0:
		if err := checkColumns(ctx, conn, t); err != nil {
			return err
		}
	default:
		for _, s := range ddl(t) {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("create table %s: %w", t, err)
			}
		}
	}
	// Written on every open, so that a read-only file fails here rather
	// than at the first commit.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion)); err != nil {
		return fmt.Errorf("record the schema version: %w", err)
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// checkColumns verifies that an existing table has our columns.
func checkColumns(ctx context.Context, conn *sql.Conn, t string) error {
	rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT name FROM pragma_table_info('%s') ORDER BY cid", t))
	if err != nil {
		return fmt.Errorf("read the columns of %s: %w", t, err)
	}
	var got []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		got = append(got, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	want := []string{"seq"}
	for i := range colExtra + 1 {
		want = append(want, colName(i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return fmt.Errorf("%w: table %s has columns %v, want %v", ErrIncompatible, t, got, want)
	}
	return nil
}
