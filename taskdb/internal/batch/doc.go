// Package batch is the write-behind queue of the remote taskdb backends
// (postgres, mongodb): writes are acknowledged once queued and applied in
// order, a batch at a time, by one goroutine.
//
// # Acknowledgement
//
// Enqueue decides ErrExists and ErrNotFound at once from the set of
// msg_ids the queue knows exist: those it added, and those found in the
// database by Options.Exists on a miss (after the writes queued before
// it are applied). The set keeps the last Options.KnownIDs of them, so a
// long-running hub stays bounded; an older one costs a lookup when it is
// updated or dropped, and adding it again is caught when applied. Add is never checked against the database: a msg_id
// added by another hub sharing the database, or before a restart, is
// caught when the batch is applied, logged and dropped (msg_ids are
// UUIDs, so this means a bug, not a race). An acknowledged write is kept
// until it is applied or the database rejects it; it is lost only if Close
// gives up on it, and Close reports how many it gave up.
//
// # Batches and outages
//
// The writer takes up to BatchSize writes once BatchSize are queued,
// FlushInterval after the oldest was queued, or at once when a reader
// waits in Sync or Close runs. Apply must apply a batch in order; it
// reports how many leading writes it applied before failing, and those
// are never passed again.
//
// A failure the backend classifies as unavailable (or an apply that
// outlives ApplyTimeout) starts an outage: the writer retries the same
// writes with exponential backoff from RetryMin to RetryMax (after a
// timeout, half as many per call, so that a live but slow database is
// not asked the same too-big batch forever; calls grow back by a quarter
// with each success), logs once
// when the outage starts, every SummaryInterval while it lasts, and when
// it ends, and the queue keeps accepting writes up to MaxPending writes or
// MaxPendingBytes. Past that bound, Enqueue fails with
// taskdb.ErrUnavailable wrapped with the cause. While the database is
// reachable, Enqueue waits for room beyond Backlog writes instead, so
// writers go no faster than the database for long and Close has little
// to flush; an outage is known only once an Apply fails or times out
// (ApplyTimeout), and until then writers may wait.
//
// Any other failure is a write the database rejects (a constraint, an
// update of a record that is gone): the writer applies the rest of the
// batch one write at a time to find it, logs it with its msg_id, counts it
// in Stats.Rejected and goes on, so one bad write cannot block the queue.
//
// # Reads
//
// Sync is the read barrier: it returns once every write enqueued before
// it is applied, so a backend that calls it before each read sees its
// own writes. During an outage it fails at once with
// taskdb.ErrUnavailable.
package batch
