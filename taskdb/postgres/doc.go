// Package postgres is the taskdb backend on PostgreSQL
// (github.com/jackc/pgx/v5), for histories that outgrow one machine or
// that several hubs share.
//
// # Layout
//
// One table (default "taskhub_tasks"), created if missing; its comment
// records SchemaVersion, and Open refuses tables with another version or
// none (ErrIncompatible). Each row is one record: doc (bytea) holds the
// whole record as msgpack (package codec), which keeps every distinction
// of the value model (int64 and float64, string and []byte, times inside
// documents) that JSONB would lose. Typed columns copy what SQL filters
// on: msg_id (primary key), submitted, started, completed and received
// (timestamptz, microseconds), client_uuid, engine_uuid, queue and
// resubmitted (text COLLATE "C" when the value is a string, else NULL with
// other set), extra_keys (the names of the keys outside the schema) and
// seq (insertion order). Indexes: (submitted, seq) for History, completed,
// pending records, client_uuid, engine_uuid.
//
// # Writes
//
// Writes go through the write-behind queue of package batch: they are
// acknowledged once queued and written in batches, each in one
// transaction that locks the rows it updates, replays the batch on them in
// memory and writes each record once (INSERT/UPDATE from unnest, DELETE
// ... = ANY). When the server is unreachable the queue buffers writes up
// to MaxPending/MaxPendingBytes and retries with backoff; past the bound,
// writes fail with taskdb.ErrUnavailable. Reads wait for the writes
// queued before them and fail with ErrUnavailable during an outage.
//
// # Queries
//
// FindRecords translates the conditions of the query's Hints on typed
// columns into SQL with bound parameters (the table name is the only
// identifier in the SQL text, checked at Open), keeping every row the
// query may match; the shared query matcher then decides each row, so
// results equal DictDB's.
//
// # Several hubs
//
// Hubs may share a table: reads see every hub's records. Each DB knows the
// msg_ids it added or found, so ErrExists covers this DB's records only; a
// duplicate msg_id from another hub is rejected when its batch is written,
// and logged.
package postgres
