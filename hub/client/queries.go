package client

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/taskhub/taskhub/wire"
)

// Connection returns the live engines: engine id → engine uuid.
func (c *Client) Connection(ctx context.Context) (map[int]string, error) {
	m, err := c.call(ctx, "connection_request", nil)
	if err != nil {
		return nil, err
	}
	return parseConnection(m)
}

func parseConnection(m *wire.Message) (map[int]string, error) {
	raw, ok := m.Content["engines"].(map[string]any)
	if !ok {
		return nil, malformed(m, "engines", m.Content["engines"])
	}
	engines := make(map[int]string, len(raw))
	for k, v := range raw {
		id, err := strconv.Atoi(k)
		uuid, ok := v.(string)
		if err != nil || !ok {
			return nil, malformed(m, "engines."+k, v)
		}
		engines[id] = uuid
	}
	return engines, nil
}

// EngineQueue is one engine's work as queue_request reports it. The IDs
// fields are filled only by a verbose request; the counts always are.
type EngineQueue struct {
	Queue     int // direct (mux) requests not yet answered
	Tasks     int // load-balanced tasks assigned and not yet answered
	Completed int // requests this engine answered

	QueueIDs, TaskIDs, CompletedIDs []string
}

// QueueStatus is the reply to queue_request.
type QueueStatus struct {
	Engines       map[int]EngineQueue
	Unassigned    int      // load-balanced tasks waiting for an engine
	UnassignedIDs []string // verbose only
}

// QueueStatus reports the queues of the engines in targets (nil: all
// engines). verbose asks for msg_id lists as well as counts. An unknown
// target gives the hub's IndexError.
func (c *Client) QueueStatus(ctx context.Context, targets []int, verbose bool) (QueueStatus, error) {
	var t any // null: every engine
	if targets != nil {
		t = targets
	}
	m, err := c.call(ctx, "queue_request", map[string]any{"targets": t, "verbose": verbose})
	if err != nil {
		return QueueStatus{}, err
	}
	return parseQueueStatus(m)
}

func parseQueueStatus(m *wire.Message) (QueueStatus, error) {
	var err error
	qs := QueueStatus{Engines: map[int]EngineQueue{}}
	for k, v := range m.Content {
		if k == "status" {
			continue
		}
		if k == "unassigned" {
			if qs.Unassigned, qs.UnassignedIDs, err = countOrIDs(v); err != nil {
				return QueueStatus{}, malformed(m, k, v)
			}
			continue
		}
		id, err := strconv.Atoi(k)
		e, ok := v.(map[string]any)
		if err != nil || !ok {
			return QueueStatus{}, malformed(m, k, v)
		}
		var q EngineQueue
		for _, f := range []struct {
			key string
			n   *int
			ids *[]string
		}{{"queue", &q.Queue, &q.QueueIDs}, {"tasks", &q.Tasks, &q.TaskIDs}, {"completed", &q.Completed, &q.CompletedIDs}} {
			if *f.n, *f.ids, err = countOrIDs(e[f.key]); err != nil {
				return QueueStatus{}, malformed(m, k+"."+f.key, e[f.key])
			}
		}
		qs.Engines[id] = q
	}
	return qs, nil
}

// countOrIDs reads a queue_reply value: a count, or a msg_id list whose
// length is the count.
func countOrIDs(v any) (int, []string, error) {
	if n, ok := v.(int64); ok {
		return int(n), nil, nil
	}
	ids, err := stringList(v)
	return len(ids), ids, err
}

// ResultStatus says which of the requested tasks are done.
type ResultStatus struct {
	Pending   []string // sorted
	Completed []string // sorted
}

// Result is one completed task as result_request returns it. Maps hold
// the wire value model (see package wire).
type Result struct {
	Header         map[string]any // the request's header
	Metadata       map[string]any // the request's metadata
	ResultHeader   map[string]any
	ResultMetadata map[string]any
	ResultContent  map[string]any // {status: ok|error|..., ...}
	Received       time.Time      // when the hub got the result; zero if unknown
	// IO is the captured output: execute_input, execute_result, error,
	// stdout, stderr.
	IO map[string]any
}

// Results is the reply to a full result_request.
type Results struct {
	ResultStatus
	Results map[string]Result // by msg_id, for every completed task
	// Buffers are the result buffers of the completed tasks, in Completed
	// order. How many belong to each task is recorded inside the
	// serialized result (ipyparallel's serialize format), not in the
	// reply: ask for one msg_id to get exactly one task's buffers.
	Buffers [][]byte
}

// ResultStatus reports whether each task in msgIDs is pending or
// completed. An unknown msg_id fails the whole request with a KeyError.
func (c *Client) ResultStatus(ctx context.Context, msgIDs []string) (ResultStatus, error) {
	m, err := c.resultRequest(ctx, msgIDs, true)
	if err != nil {
		return ResultStatus{}, err
	}
	return resultStatus(m)
}

// Results fetches the status and, for completed tasks, the results of
// msgIDs. An unknown msg_id fails the whole request with a KeyError.
func (c *Client) Results(ctx context.Context, msgIDs []string) (Results, error) {
	m, err := c.resultRequest(ctx, msgIDs, false)
	if err != nil {
		return Results{}, err
	}
	return parseResults(m)
}

func parseResults(m *wire.Message) (Results, error) {
	st, err := resultStatus(m)
	if err != nil {
		return Results{}, err
	}
	r := Results{ResultStatus: st, Results: map[string]Result{}, Buffers: m.Buffers}
	for _, id := range st.Completed {
		e, ok := m.Content[id].(map[string]any)
		if !ok {
			return Results{}, malformed(m, id, m.Content[id])
		}
		res := Result{
			Header: dict(e["header"]), Metadata: dict(e["metadata"]),
			ResultHeader: dict(e["result_header"]), ResultMetadata: dict(e["result_metadata"]),
			ResultContent: dict(e["result_content"]), IO: dict(e["io"]),
		}
		res.Received, _ = date(e["received"])
		r.Results[id] = res
	}
	return r, nil
}

func (c *Client) resultRequest(ctx context.Context, msgIDs []string, statusOnly bool) (*wire.Message, error) {
	return c.call(ctx, "result_request", map[string]any{"msg_ids": nonNil(msgIDs), "status_only": statusOnly})
}

func resultStatus(m *wire.Message) (ResultStatus, error) {
	pending, err := stringList(m.Content["pending"])
	if err != nil {
		return ResultStatus{}, malformed(m, "pending", m.Content["pending"])
	}
	completed, err := stringList(m.Content["completed"])
	if err != nil {
		return ResultStatus{}, malformed(m, "completed", m.Content["completed"])
	}
	return ResultStatus{Pending: pending, Completed: completed}, nil
}

// History returns the msg_id of every recorded task, oldest submission
// first.
func (c *Client) History(ctx context.Context) ([]string, error) {
	m, err := c.call(ctx, "history_request", nil)
	if err != nil {
		return nil, err
	}
	return parseHistory(m)
}

func parseHistory(m *wire.Message) ([]string, error) {
	ids, err := stringList(m.Content["history"])
	if err != nil {
		return nil, malformed(m, "history", m.Content["history"])
	}
	return ids, nil
}

// Record is a task record returned by DBQuery: the keys of ipyparallel's
// task records in the wire value model. The dates submitted, started,
// completed and received, and the date of header and result_header, are
// time.Time; buffers and result_buffers, when requested, are [][]byte.
type Record map[string]any

// Date keys converted to time.Time in a Record, as the Python client does.
var recordDates = []string{"submitted", "started", "completed", "received"}

// DBQuery returns the records matching query, a MongoDB-style filter such
// as {"completed": {"$ne": nil}} (time.Time values are sent as dates). keys
// limits the fields returned (msg_id is always there); nil or empty
// returns whole records without buffers. Buffers come back only when keys
// names "buffers" or "result_buffers".
func (c *Client) DBQuery(ctx context.Context, query map[string]any, keys []string) ([]Record, error) {
	if query == nil {
		query = map[string]any{}
	}
	var k any // null: every key
	if len(keys) > 0 {
		k = keys
	}
	m, err := c.call(ctx, "db_request", map[string]any{"query": query, "keys": k})
	if err != nil {
		return nil, err
	}
	return parseDBQuery(m)
}

// parseDBQuery reads a db_reply, re-slicing its buffer frames (§4.2).
func parseDBQuery(m *wire.Message) ([]Record, error) {
	raw, ok := m.Content["records"].([]any)
	if !ok {
		return nil, malformed(m, "records", m.Content["records"])
	}
	bufLens, err := lens(m.Content["buffer_lens"], len(raw))
	if err != nil {
		return nil, malformed(m, "buffer_lens", m.Content["buffer_lens"])
	}
	resultLens, err := lens(m.Content["result_buffer_lens"], len(raw))
	if err != nil {
		return nil, malformed(m, "result_buffer_lens", m.Content["result_buffer_lens"])
	}
	// The frames hold, per record, its buffers then its result buffers (§4.2).
	bufs := m.Buffers
	take := func(n int) ([][]byte, error) {
		if n > len(bufs) {
			return nil, fmt.Errorf("client: malformed db_reply: %d buffer frames announced, %d left", n, len(bufs))
		}
		out := bufs[:n:n]
		bufs = bufs[n:]
		return out, nil
	}
	records := make([]Record, len(raw))
	for i, r := range raw {
		rec, ok := r.(map[string]any)
		if !ok {
			return nil, malformed(m, "records["+strconv.Itoa(i)+"]", r)
		}
		if bufLens != nil {
			if rec["buffers"], err = take(bufLens[i]); err != nil {
				return nil, err
			}
		}
		if resultLens != nil {
			if rec["result_buffers"], err = take(resultLens[i]); err != nil {
				return nil, err
			}
		}
		for _, k := range recordDates {
			if t, ok := date(rec[k]); ok {
				rec[k] = t
			}
		}
		for _, k := range []string{"header", "result_header"} {
			if h, ok := rec[k].(map[string]any); ok {
				if t, ok := date(h["date"]); ok {
					h["date"] = t
				}
			}
		}
		records[i] = rec
	}
	if len(bufs) > 0 {
		return nil, fmt.Errorf("client: malformed db_reply: %d buffer frames left over", len(bufs))
	}
	return records, nil
}

// lens reads buffer_lens or result_buffer_lens: null, or one count per
// record.
func lens(v any, n int) ([]int, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok || len(l) != n {
		return nil, fmt.Errorf("want %d counts", n)
	}
	out := make([]int, n)
	for i, x := range l {
		c, ok := x.(int64)
		if !ok || c < 0 {
			return nil, fmt.Errorf("bad count %v", x)
		}
		out[i] = int(c)
	}
	return out, nil
}

// Purge drops the records of the completed tasks in msgIDs and, for each
// engine in engineIDs, of every completed task that engine ran. A pending
// msg_id or an unknown engine fails the request.
func (c *Client) Purge(ctx context.Context, msgIDs []string, engineIDs []int) error {
	if engineIDs == nil {
		engineIDs = []int{}
	}
	_, err := c.call(ctx, "purge_request", map[string]any{"msg_ids": nonNil(msgIDs), "engine_ids": engineIDs})
	return err
}

// PurgeAll drops the records of every completed task.
func (c *Client) PurgeAll(ctx context.Context) error {
	_, err := c.call(ctx, "purge_request", map[string]any{"msg_ids": "all", "engine_ids": []int{}})
	return err
}

// Resubmit submits the tasks in msgIDs again and returns old msg_id → new
// msg_id. An unknown msg_id fails the request with a KeyError.
func (c *Client) Resubmit(ctx context.Context, msgIDs []string) (map[string]string, error) {
	m, err := c.call(ctx, "resubmit_request", map[string]any{"msg_ids": nonNil(msgIDs)})
	if err != nil {
		return nil, err
	}
	return parseResubmit(m)
}

func parseResubmit(m *wire.Message) (map[string]string, error) {
	raw, ok := m.Content["resubmitted"].(map[string]any)
	if !ok {
		return nil, malformed(m, "resubmitted", m.Content["resubmitted"])
	}
	out := make(map[string]string, len(raw))
	for old, v := range raw {
		n, ok := v.(string)
		if !ok {
			return nil, malformed(m, "resubmitted."+old, v)
		}
		out[old] = n
	}
	return out, nil
}

// Shutdown asks the hub to shut down. It returns once the hub has agreed.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := c.call(ctx, "shutdown_request", nil)
	return err
}

func malformed(m *wire.Message, key string, v any) error {
	return fmt.Errorf("client: malformed %s: %s: unexpected %T %v", m.Header.MsgType, key, v, v)
}

// stringList reads a list of strings; null reads as an empty list.
func stringList(v any) ([]string, error) {
	if v == nil {
		return []string{}, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("not a list")
	}
	out := make([]string, len(l))
	for i, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("not a string list")
		}
		out[i] = s
	}
	return out, nil
}

func dict(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// date reads a date sent as a string (both packers carry dates as strings).
func date(v any) (time.Time, bool) {
	switch v := v.(type) {
	case time.Time:
		return v, true
	case string:
		return wire.ParseDate(v)
	}
	return time.Time{}, false
}

// nonNil sends a nil list as [] rather than null, which the hub refuses.
func nonNil(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}
