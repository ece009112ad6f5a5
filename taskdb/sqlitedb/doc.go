// Package sqlitedb is the durable taskdb backend: task records in one
// SQLite file (modernc.org/sqlite, pure Go, so hubd stays a static
// binary), kept across restarts.
//
// # Layout
//
// One table (default "tasks"), created if missing and reused on every
// open; the file's PRAGMA user_version records SchemaVersion (2). Open
// migrates a version 1 file (every v1 table in it, in one transaction, so
// a crash leaves the v1 file intact) and refuses other versions and tables
// it did not create (ErrIncompatible).
//
// Columns: seq (INTEGER PRIMARY KEY, insertion order); typed columns for
// the keys SQL indexes or compares: msg_id (TEXT, not unique: the catalog
// decides existence and reads find rows by seq), the four time keys as
// INTEGER microseconds since the epoch, UTC (order and comparisons exact
// whatever offset a time was written or queried with), client_uuid and
// engine_uuid (NULL, TEXT for a string, a msgpack BLOB for any other
// value); and doc, a msgpack map of every other key, in taskdb.Doc order,
// schema keys at their default left out, nested maps with sorted keys so
// that they decode straight into Docs. Indexes serve the history order and
// time ranges (submitted) and pending records (seq WHERE completed IS
// NULL). The catalog (below) serves msg_id, client_uuid and engine_uuid:
// Open drops the client_uuid and engine_uuid indexes earlier builds made,
// since keeping them cost every write more than anything else.
//
// # Writes
//
// One writer goroutine owns the writing connection and applies writes in
// the order they were acknowledged, committing a group of them at a time
// in WAL mode. An in-memory catalog of msg_ids (with each row's seq,
// submitted time, interned client_uuid and engine_uuid, and whether it is
// pending) decides ErrExists and ErrNotFound at once, so a write is
// acknowledged without waiting for SQLite:
//
//   - SyncBatch (default): a write returns once queued; the writer
//     commits every BatchSize writes or FlushInterval. A crash (of the
//     process, the OS or the power) loses at most the writes not yet
//     committed: those of the last flush interval, and never more than the
//     bounded queue (2×BatchSize) plus the open batch when the disk cannot
//     keep up. The file is never corrupted.
//   - SyncFull: a write returns once its commit is on disk. Concurrent
//     writers share commits (group commit).
//
// Every commit is fsynced (synchronous=FULL) in both modes; they differ
// only in whether a write waits for its commit. A write that finds the
// queue full waits before taking the catalog's lock, so reads never wait
// behind it. A write SQLite rejects outright (a value over its limits) is
// dropped alone, logged, counted in Stats.Rejected, removed from the
// catalog and reported to a SyncFull caller. Queued and uncommitted
// writes hold at most 64 MiB of strings and blobs: past that a write waits
// for room, and a batch commits early once it holds half of it, so large
// buffers cannot pile up in memory when the disk falls behind.
//
// Reads see every write acknowledged before them. GetRecord of a record
// with queued writes is answered by the writer, in queue order, on its
// connection (which sees the open batch), so it forces no commit; other
// reads first wait for the queued writes to commit. A failed commit (disk full, I/O error) is
// logged, counted in Stats, and retried every flush interval; meanwhile
// new writes fail with an error and SyncFull callers learn their write is
// not on disk, and reads that would wait for queued writes return the
// commit error instead. Close commits what is queued, and reports writes
// it could not commit.
//
// # Queries
//
// FindRecords translates what SQL can decide on the typed columns into a
// condition that keeps every row the query may match: the conditions the
// query package reports as Hints (equality, $in of any length through
// json_each, null/missing, $exists: false, ranges, at the top level and in
// $and; msg_ids, client_uuids and engine_uuids become the seqs of the
// catalog's entries that may hold them), $or of such documents, and
// $exists: true or $ne: null. It then runs the shared
// query matcher on every row SQL returns, so results are exactly DictDB's;
// conditions on doc keys, $nin, $ne, $nor, $not, $regex and the rest are
// decided by the matcher alone. A projection reads only the columns of
// the keys and of the fields the query tests, and decodes only those doc
// keys. Queries that touch only msg_id and submitted, and History, are
// answered from the catalog.
//
// # Retention
//
// Off by default. MaxAge and MaxRecords prune completed records (pending
// ones are kept) every PruneInterval. A pruned record reads as
// taskdb.ErrNotFound, not ErrCulled: SQLite keeps no tombstones.
package sqlitedb
