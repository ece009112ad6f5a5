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
	rows, err := db.pruneCandidates(ctx, now)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	n, err := db.dropPruned(ctx, rows)
	if err != nil {
		return 0, fmt.Errorf("sqlitedb: retention: %w", err)
	}
	db.stats.pruned.Add(uint64(n))
	return n, nil
}

// pruneCandidates returns the rows retention removes at time now: the
// msg_id and seq of each.
func (db *DB) pruneCandidates(ctx context.Context, now time.Time) (map[string]int64, error) {
	if err := db.check(ctx); err != nil {
		return nil, err
	}
	if err := db.sync(ctx); err != nil {
		return nil, err
	}
	rows := map[string]int64{}
	add := func(stmt string, args ...any) error {
		rs, err := db.db.QueryContext(ctx, stmt, args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var id string
			var seq int64
			if err := rs.Scan(&id, &seq); err != nil {
				return err
			}
			rows[id] = seq
		}
		return rs.Err()
	}
	if db.opts.MaxAge > 0 {
		if err := add("SELECT msg_id, seq FROM "+db.table+" WHERE completed < ?", now.Add(-db.opts.MaxAge).UnixMicro()); err != nil {
			return nil, fmt.Errorf("sqlitedb: retention by age: %w", err)
		}
	}
	if db.opts.MaxRecords > 0 {
		var total int
		if err := db.db.QueryRowContext(ctx, "SELECT count(*) FROM "+db.table).Scan(&total); err != nil {
			return nil, fmt.Errorf("sqlitedb: retention by count: %w", err)
		}
		if excess := total - len(rows) - db.opts.MaxRecords; excess > 0 {
			// The oldest completed records by insertion, beyond those already chosen.
			stmt := "SELECT msg_id, seq FROM " + db.table + " WHERE completed IS NOT NULL"
			var args []any
			if db.opts.MaxAge > 0 {
				stmt += " AND completed >= ?"
				args = append(args, now.Add(-db.opts.MaxAge).UnixMicro())
			}
			if err := add(stmt+" ORDER BY seq LIMIT ?", append(args, excess)...); err != nil {
				return nil, fmt.Errorf("sqlitedb: retention by count: %w", err)
			}
		}
	}
	return rows, nil
}

// dropPruned drops the candidate rows that are still what retention
// chose: the same row (not dropped and added again since) and still
// completed (not updated back to pending since).
func (db *DB) dropPruned(ctx context.Context, rows map[string]int64) (int, error) {
	ids := make([]string, 0, len(rows))
	for id := range rows {
		ids = append(ids, id)
	}
	return db.dropIDs(ctx, ids, func(e *entry) bool { return !e.pending && e.seq == rows[e.id] })
}
