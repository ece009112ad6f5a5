package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/taskhub/taskhub/taskdb"
)

// SchemaVersion is the layout version recorded in the file's user_version.
// Open migrates version 1 files and refuses other versions.
const SchemaVersion = 2

// ErrIncompatible reports a database file or table that this version of
// sqlitedb did not create and will not touch.
var ErrIncompatible = errors.New("sqlitedb: incompatible database")

// Column kinds.
const (
	kindID    = iota // msg_id: TEXT, never null
	kindTime         // INTEGER microseconds since the Unix epoch, UTC, or NULL
	kindValue        // NULL, TEXT for a string, a msgpack BLOB for anything else
)

// column describes one typed column of the task table: a key SQL indexes
// or compares. Every other key lives in the doc column.
type column struct {
	key  string
	kind int
}

// columns lists the typed columns, in taskdb.SchemaKeys order; index i is
// bit i of an update's column set.
var columns = [...]column{
	{taskdb.KeyMsgID, kindID},
	{taskdb.KeySubmitted, kindTime},
	{taskdb.KeyClientUUID, kindValue},
	{taskdb.KeyEngineUUID, kindValue},
	{taskdb.KeyStarted, kindTime},
	{taskdb.KeyCompleted, kindTime},
	{taskdb.KeyReceived, kindTime},
}

// colDoc is the index of the doc column, after the typed columns: a
// msgpack map of the record's other keys (see appendDoc). colSeq stands
// for the seq column (insertion order) in column lists.
const (
	colDoc = len(columns)
	colSeq = -1
)

// columnIndex maps a typed column's key to its index in columns.
var columnIndex = func() map[string]int {
	m := make(map[string]int, len(columns))
	for i, c := range columns {
		m[c.key] = i
	}
	return m
}()

// The typed columns the catalog tracks.
var (
	colSubmitted = columnIndex[taskdb.KeySubmitted]
	colClient    = columnIndex[taskdb.KeyClientUUID]
	colEngine    = columnIndex[taskdb.KeyEngineUUID]
	colCompleted = columnIndex[taskdb.KeyCompleted]
)

// colName returns the SQL name of column i.
func colName(i int) string {
	switch i {
	case colDoc:
		return "doc"
	case colSeq:
		return "seq"
	}
	return columns[i].key
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// createTable returns the statement creating table t. msg_id is not
// UNIQUE: the catalog decides existence, and reads find a record's row
// by seq, so an index on it would only cost writes.
func createTable(t string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (\n\tseq INTEGER PRIMARY KEY", t)
	for _, c := range columns {
		switch c.kind {
		case kindID:
			fmt.Fprintf(&b, ",\n\t%s TEXT NOT NULL", c.key)
		case kindTime:
			fmt.Fprintf(&b, ",\n\t%s INTEGER", c.key)
		default: // BLOB affinity: SQLite stores text and blobs as given
			fmt.Fprintf(&b, ",\n\t%s BLOB", c.key)
		}
	}
	b.WriteString(",\n\tdoc BLOB NOT NULL\n)")
	return b.String()
}

// createIndexes returns the statements creating table t's indexes: the
// history order and time ranges, and pending records. The catalog serves
// client_uuid and engine_uuid.
func createIndexes(t string) []string {
	return []string{
		fmt.Sprintf("CREATE INDEX %[1]s_history ON %[1]s(submitted) WHERE submitted IS NOT NULL", t),
		fmt.Sprintf("CREATE INDEX %[1]s_pending ON %[1]s(seq) WHERE completed IS NULL", t),
	}
}

// droppedIndexes returns the names of the indexes earlier builds created
// on table t and this one drops: the catalog serves their queries, and
// keeping them up to date cost every write more than any other index.
func droppedIndexes(t string) []string { return []string{t + "_client", t + "_engine"} }

// dropOldIndexes drops table t's droppedIndexes, logging those it finds.
func dropOldIndexes(ctx context.Context, conn *sql.Conn, t string, log *slog.Logger) error {
	for _, name := range droppedIndexes(t) {
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ? AND tbl_name = ?", name, t).Scan(&n); err != nil {
			return fmt.Errorf("look for index %s: %w", name, err)
		}
		if n == 0 {
			continue
		}
		start := time.Now()
		if _, err := conn.ExecContext(ctx, "DROP INDEX "+name); err != nil {
			return fmt.Errorf("drop index %s: %w", name, err)
		}
		log.Info("dropped an index the in-memory catalog now serves", "table", t, "index", name, "took", time.Since(start))
	}
	return nil
}

// migrate creates table t if missing and brings the file to
// SchemaVersion, in one transaction: a crash leaves the file as it was.
func migrate(ctx context.Context, conn *sql.Conn, t string, log *slog.Logger) (err error) {
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
	case version == 1:
		if err := migrateV1(ctx, conn, log); err != nil {
			return fmt.Errorf("migrate from schema version 1: %w", err)
		}
	case version != 0 && version != SchemaVersion:
		return fmt.Errorf("%w: the file has schema version %d, this build reads versions 1 and %d", ErrIncompatible, version, SchemaVersion)
	case version == 0 && exists != 0:
		return fmt.Errorf("%w: table %s exists but was not created by taskhub (schema version 0)", ErrIncompatible, t)
	}
	switch cols, err := tableColumns(ctx, conn, t); {
	case err != nil:
		return err
	case cols == "":
		for _, s := range append([]string{createTable(t)}, createIndexes(t)...) {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("create table %s: %w", t, err)
			}
		}
	case cols != v2Columns:
		return fmt.Errorf("%w: table %s has columns %s, want %s", ErrIncompatible, t, cols, v2Columns)
	default:
		if err := dropOldIndexes(ctx, conn, t, log); err != nil {
			return err
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

// v2Columns are the task table's columns, comma-separated.
var v2Columns = func() string {
	names := []string{colName(colSeq)}
	for i := range colDoc + 1 {
		names = append(names, colName(i))
	}
	return strings.Join(names, ",")
}()

// tableColumns returns table t's column names, comma-separated in
// order, or "" if there is no such table.
func tableColumns(ctx context.Context, conn *sql.Conn, t string) (string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT name FROM pragma_table_info(?) ORDER BY cid", t)
	if err != nil {
		return "", fmt.Errorf("read the columns of %s: %w", t, err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return "", err
		}
		got = append(got, n)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("read the columns of %s: %w", t, err)
	}
	return strings.Join(got, ","), nil
}
