// Package taskdb defines the task record database that the hub writes
// every task's lifecycle to: the Record type, the DB interface every
// backend implements, and the errors they return.
//
// Backends live in subpackages: dictdb (in memory, indexed, culled) and
// nodb (stores nothing). Package dbtest holds the conformance suite and
// benchmarks they all run; package query compiles the MongoDB-style
// queries that FindRecords and DropMatchingRecords take.
//
// # Records
//
// A record is a document: string keys; values are nil, bool, int64,
// float64, string, time.Time (UTC, microsecond precision), []byte, []any
// and map[string]any. Writes also accept the common Go types listed at
// Normalize. Every stored record carries the 22 SchemaKeys of
// ipyparallel's init_record (null when unset, "" for stdout and stderr);
// UpdateRecord may add any other key. The TimeKeys hold null or a time.
//
// Reads return records as Docs: ordered documents, schema keys first,
// which cost one allocation where a map costs a hash table. Doc.Record
// converts one to a map.
//
// Null counts as absent: a query for {completed: null} or
// {completed: {$exists: false}} finds pending tasks.
package taskdb
