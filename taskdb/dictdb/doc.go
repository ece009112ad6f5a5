// Package dictdb is the in-memory task record database, the hub's
// default backend, modelled on ipyparallel's DictDB without its defects.
//
// # Storage
//
// A record is 88 bytes of typed fields (the four times as microseconds,
// its seq and bookkeeping), in slabs addressed by seq, and a buf holding
// its msg_id and every other key not at its default, packed in a compact
// tagged encoding (see pack.go): common keys and values of ipyparallel's
// messages as one-byte words, a header's copy of the msg_id as a
// reference, buffers over 1 KiB kept apart as strings of their own. Bufs
// are appended to shared
// 256 KiB blocks of bytes, which are compacted once half released.
// Neither records, blocks nor indexes hold pointers (indexes name records
// by seq), so the collector neither scans nor marks the store, however
// many records it holds: that is what keeps writes and large reads fast
// as the store grows. Writes encode outside the lock; an update merges
// its fields into a new buf. Reads decode: results are deep copies carved
// from a few chunks, sharing only immutable strings (substrings of
// blocks: a result kept keeps its blocks); matching decodes nested documents lazily, as they are looked
// up. The msg_id index is keyed by a seeded hash of the id.
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
