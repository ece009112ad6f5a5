// Package nodb is the task record database that stores nothing, like
// ipyparallel's NoDB: every write and drop succeeds and is forgotten;
// GetRecord, FindRecords and History return taskdb.ErrNoData, whose
// message says how to enable storage (db.backend: dict).
//
// Use it when no client ever asks the hub for past results and memory
// matters more than history.
package nodb
