package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskhub/taskhub/taskdb"
)

// SchemaVersion is the table layout version, recorded in the table's
// comment. Open refuses tables with another version.
const SchemaVersion = 1

// ErrIncompatible reports a table that this version of the backend did
// not create and will not touch.
var ErrIncompatible = errors.New("postgres: incompatible table")

// commentPrefix starts the comment Open puts on the tables it creates.
const commentPrefix = "taskhub task records, schema version "

// tableName is what Options.Table accepts: a plain lower-case identifier,
// so it needs no quoting anywhere.
var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Typed columns. Times are timestamptz; the text columns hold the key's
// value when it is a string, NULL otherwise (other is then true if the
// value is neither null nor a string). doc holds the whole record.
var (
	timeKeys = [...]string{taskdb.KeySubmitted, taskdb.KeyStarted, taskdb.KeyCompleted, taskdb.KeyReceived}
	textKeys = [...]string{taskdb.KeyClientUUID, taskdb.KeyEngineUUID, taskdb.KeyQueue, taskdb.KeyResubmitted}
)

// rowColumns lists the columns a write sets, in the order of rowSet.args.
var rowColumns = func() []string {
	cs := []string{"msg_id"}
	cs = append(cs, timeKeys[:]...)
	cs = append(cs, textKeys[:]...)
	return append(cs, "other", "extra_keys", "doc")
}()

// rowTypes are rowColumns' array types, for unnest.
var rowTypes = []string{"text[]",
	"timestamptz[]", "timestamptz[]", "timestamptz[]", "timestamptz[]",
	"text[]", "text[]", "text[]", "text[]",
	"bool[]", "text[]", "bytea[]"}

func ddl(t string) []string {
	text := func(k string) string { return k + ` text COLLATE "C"` }
	cols := []string{
		"seq bigint GENERATED ALWAYS AS IDENTITY",
		`msg_id text COLLATE "C" PRIMARY KEY`,
	}
	for _, k := range timeKeys {
		cols = append(cols, k+" timestamptz")
	}
	for _, k := range textKeys {
		cols = append(cols, text(k))
	}
	cols = append(cols,
		"other boolean NOT NULL",
		"extra_keys jsonb", // the names of the keys outside the schema, if any
		"doc bytea NOT NULL",
	)
	return []string{
		// Rows are mostly appended: let autovacuum visit the table after
		// every 1 % of new rows (not 20 %), so that the visibility map stays
		// current and History remains an index-only scan as the table grows.
		"CREATE TABLE " + t + " (\n\t" + strings.Join(cols, ",\n\t") + "\n) WITH (autovacuum_vacuum_insert_scale_factor = 0.01)",
		"CREATE INDEX " + t + "_submitted ON " + t + " (submitted, seq) INCLUDE (msg_id)", // History: index-only
		"CREATE INDEX " + t + "_completed ON " + t + " (completed)",
		"CREATE INDEX " + t + "_pending ON " + t + " (seq) WHERE completed IS NULL",
		"CREATE INDEX " + t + "_client_uuid ON " + t + " (client_uuid)",
		"CREATE INDEX " + t + "_engine_uuid ON " + t + " (engine_uuid)",
		"CREATE INDEX " + t + "_other ON " + t + " (seq) WHERE other",
		"CREATE INDEX " + t + "_seq ON " + t + " (seq)",
		"COMMENT ON TABLE " + t + " IS '" + commentPrefix + strconv.Itoa(SchemaVersion) + "'",
	}
}

// migrate creates the table if it is missing and checks its version. An
// advisory lock keeps hubs starting together from racing.
func migrate(ctx context.Context, pool *pgxpool.Pool, t string) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "taskhub:"+t); err != nil {
			return err
		}
		var exists bool
		var comment *string
		err := tx.QueryRow(ctx, `SELECT true, obj_description(c.oid, 'pg_class')
			FROM pg_class c WHERE c.oid = to_regclass($1)`, t).Scan(&exists, &comment)
		if errors.Is(err, pgx.ErrNoRows) {
			for _, s := range ddl(t) {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("create table %s: %w", t, err)
				}
			}
			return nil
		}
		if err != nil {
			return err
		}
		if comment == nil || !strings.HasPrefix(*comment, commentPrefix) {
			return fmt.Errorf("%w: table %s exists and was not created by taskhub; choose another db.postgres.table", ErrIncompatible, t)
		}
		v, err := strconv.Atoi(strings.TrimPrefix(*comment, commentPrefix))
		if err != nil || v != SchemaVersion {
			return fmt.Errorf("%w: table %s has schema version %s; this taskhub reads version %d", ErrIncompatible, t, strings.TrimPrefix(*comment, commentPrefix), SchemaVersion)
		}
		return nil
	})
}
