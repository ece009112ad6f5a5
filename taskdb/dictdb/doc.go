// Package dictdb is the in-memory task record database, the hub's
// default backend, modelled on ipyparallel's DictDB without its defects.
//
// # Storage
//
// Records are stored frozen: the schema keys in typed slots (times as
// microseconds), other keys in a sorted field list, nested documents as
// compact field lists rather than maps, buffers and result_buffers packed
// into one byte string the collector need not scan. Immutable values are shared rather
// than copied: strings and times with the caller, client_uuid and
// engine_uuid values and small repeated documents ({status: "ok"}) between
// records. Reads thaw deep copies, so no caller ever shares mutable memory
// with the store.
//
// # Indexes and planning
//
// msg_id lookups are O(1). Ordered indexes keep records by submitted time
// (maintained incrementally: History and submitted ranges never sort),
// pending records (completed null), and records by client_uuid and by
// engine_uuid (in the order they got the value, so setting one late
// appends). FindRecords asks the filter for hints
// (query.Filter.Hints), takes the index yielding the fewest candidates,
// and matches the whole filter against those, skipping the match when
// the index holds exactly the matching records. Anything else scans every
// record. Results come in insertion order.
//
// # Culling
//
// After each add, and after each update that grows buffers or
// result_buffers, the DB enforces Options.RecordLimit and
// Options.SizeLimit with ipyparallel's arithmetic: past the record limit
// it culls max(1, CullFraction·RecordLimit) records; past the size limit
// it culls until the buffers total at most SizeLimit·(1−CullFraction).
// Completed records go first, oldest submitted first; a pending record is
// culled only when no completed one is left, and that is logged as a
// warning. The last Options.Tombstones culled ids answer ErrCulled.
package dictdb
