package sqlitedb

import (
	"context"
	"fmt"
	"time"
)

// pruneLoop applies retention every PruneInterval until Close.
func (db *DB) pruneLoop() {
	defer close(db.pruneDone)
	t := time.NewTicker(db.opts.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), db.opts.PruneInterval)
			n, err := db.prune(ctx, time.Now())
			cancel()
			if err != nil {
				db.log.Warn("retention failed", "err", err)
			} else if n > 0 {
				db.log.Info("retention pruned records", "records", n)
			}
		}
	}
}

// prune removes the completed records that MaxAge and MaxRecords exclude
// at time now and returns how many it removed. Pending records are kept.
func (db *DB) prune(ctx context.Context, now time.Time) (int, error) {
	if err := db.check(ctx); err != nil {
		return 0, err
	}
	if err := db.sync(ctx); err != nil {
		return 0, err
	}
	var ids []string
	add := func(stmt string, args ...any) error {
		rows, err := db.db.QueryContext(ctx, stmt, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	}
	if db.opts.MaxAge > 0 {
		if err := add("SELECT msg_id FROM "+db.table+" WHERE completed < ?", now.Add(-db.opts.MaxAge).UnixMicro()); err != nil {
			return 0, fmt.Errorf("sqlitedb: retention by age: %w", err)
		}
	}
	if db.opts.MaxRecords > 0 {
		var total int
		if err := db.db.QueryRowContext(ctx, "SELECT count(*) FROM "+db.table).Scan(&total); err != nil {
			return 0, fmt.Errorf("sqlitedb: retention by count: %w", err)
		}
		if excess := total - len(ids) - db.opts.MaxRecords; excess > 0 {
			// The oldest completed records by insertion, beyond those already chosen.
			stmt := "SELECT msg_id FROM " + db.table + " WHERE completed IS NOT NULL"
			var args []any
			if db.opts.MaxAge > 0 {
				stmt += " AND completed >= ?"
				args = append(args, now.Add(-db.opts.MaxAge).UnixMicro())
			}
			if err := add(stmt+" ORDER BY seq LIMIT ?", append(args, excess)...); err != nil {
				return 0, fmt.Errorf("sqlitedb: retention by count: %w", err)
			}
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	n, err := db.dropIDs(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("sqlitedb: retention: %w", err)
	}
	db.stats.pruned.Add(uint64(n))
	return n, nil
}
