package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/internal/codec"
)

// v1Columns are the columns of a schema version 1 table: seq, one per
// schema key (times as INTEGER microseconds, other values as NULL, TEXT
// or a msgpack BLOB), and extra, a msgpack map of the other keys.
var v1Columns = "seq," + strings.Join(taskdb.SchemaKeys[:], ",") + ",extra"

// migrateHook, if set, runs after a table's rows are copied, before the
// old table is dropped; tests use it to crash a migration midway.
var migrateHook func(table string)

// migrateV1 rewrites every schema version 1 table of the file in the
// version 2 layout, within the caller's transaction.
func migrateV1(ctx context.Context, conn *sql.Conn, log *slog.Logger) error {
	rows, err := conn.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	for _, t := range tables {
		switch cols, err := tableColumns(ctx, conn, t); {
		case err != nil:
			return err
		case cols == v1Columns:
			if err := migrateTable(ctx, conn, t, log); err != nil {
				return fmt.Errorf("table %s: %w", t, err)
			}
		}
	}
	return nil
}

// migrateTable copies v1 table t into a new v2 table, drops t and gives
// the new table its name.
func migrateTable(ctx context.Context, conn *sql.Conn, t string, log *slog.Logger) error {
	start := time.Now()
	tmp := `"` + t + `-v2"` // quoted: no table name Options accept has a hyphen
	if _, err := conn.ExecContext(ctx, createTable(tmp)); err != nil {
		return err
	}
	marks := strings.Repeat(", ?", colDoc+1)
	insert, err := conn.PrepareContext(ctx, "INSERT INTO "+tmp+" VALUES (?"+marks+")")
	if err != nil {
		return err
	}
	defer insert.Close()
	// In chunks by seq, so that no statement reads while another writes.
	const chunk = 1000
	n := 0
	for last := int64(-1 << 63); ; {
		recs, seqs, err := readV1(ctx, conn, t, last, chunk)
		if err != nil {
			return err
		}
		for i, rec := range recs {
			var r row
			id, _ := rec[taskdb.KeyMsgID].(string)
			delete(rec, taskdb.KeyMsgID)
			for k, v := range rec {
				if err := r.put(k, v); err != nil {
					return fmt.Errorf("record %s: %w", id, err)
				}
			}
			args := r.insertArgs(id)
			args[0] = seqs[i]
			if _, err := insert.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("record %s: %w", id, err)
			}
		}
		n += len(recs)
		if len(recs) < chunk {
			break
		}
		last = seqs[len(seqs)-1]
	}
	if migrateHook != nil {
		migrateHook(t)
	}
	stmts := append([]string{"DROP TABLE " + t, "ALTER TABLE " + tmp + " RENAME TO " + t}, createIndexes(t)...)
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	log.Info("migrated a task table from schema version 1 to 2", "table", t, "records", n, "took", time.Since(start))
	return nil
}

// readV1 returns up to n records of v1 table t with a seq above after,
// in seq order, and their seqs.
func readV1(ctx context.Context, conn *sql.Conn, t string, after int64, n int) ([]taskdb.Record, []int64, error) {
	rows, err := conn.QueryContext(ctx, "SELECT "+strings.ReplaceAll(v1Columns, ",", ", ")+" FROM "+t+" WHERE seq > ? ORDER BY seq LIMIT ?", after, n)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var recs []taskdb.Record
	var seqs []int64
	vals := make([]any, len(taskdb.SchemaKeys)+2)
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		seq, _ := vals[0].(int64)
		rec := make(taskdb.Record, len(taskdb.SchemaKeys))
		for i, k := range taskdb.SchemaKeys {
			v, err := v1Value(k, vals[i+1])
			if err != nil {
				return nil, nil, fmt.Errorf("row %d: %w", seq, err)
			}
			rec[k] = v
		}
		if extra := vals[len(vals)-1]; extra != nil {
			b, ok := extra.([]byte)
			if !ok {
				return nil, nil, fmt.Errorf("row %d: extra column holds a %T", seq, extra)
			}
			m, err := codec.Decode(b)
			if err != nil {
				return nil, nil, fmt.Errorf("row %d: decode extra keys: %w", seq, err)
			}
			ms, ok := m.(map[string]any)
			if !ok {
				return nil, nil, fmt.Errorf("row %d: extra column holds a %T", seq, m)
			}
			for k, v := range ms {
				rec[k] = v
			}
		}
		recs, seqs = append(recs, rec), append(seqs, seq)
	}
	return recs, seqs, rows.Err()
}

// v1Value converts the SQL value of schema key k's v1 column.
func v1Value(k string, v any) (any, error) {
	switch x := v.(type) {
	case nil, string:
		return x, nil
	case int64:
		if taskdb.IsTimeKey(k) {
			return time.UnixMicro(x).UTC(), nil
		}
	case []byte:
		if !taskdb.IsTimeKey(k) {
			d, err := codec.Decode(x)
			if err != nil {
				return nil, fmt.Errorf("decode %s: %w", k, err)
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("column %s holds a %T", k, v)
}
