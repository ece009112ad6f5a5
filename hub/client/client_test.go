package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskhub/taskhub/hub/client/clienttest"
	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/wire"
)

func dial(tb testing.TB, cf connfile.Client, opts Options) *Client {
	tb.Helper()
	c, err := Dial(tb.Context(), cf, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

var ok = clienttest.OK

var (
	t0 = time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	t1 = t0.Add(time.Second)
)

// TestCalls checks, for every query, the request the client sends and how
// it reads the reply, with both packers.
func TestCalls(t *testing.T) {
	for _, packer := range []string{"msgpack", "json"} {
		t.Run(packer, func(t *testing.T) {
			for _, c := range []struct {
				name    string
				call    func(ctx context.Context, c *Client) (any, error)
				wantReq string         // msg_type
				reqKeys map[string]any // request content, compared as packed by the peer
				reply   *clienttest.Reply
				want    any
			}{
				{
					name:    "Connection",
					call:    func(ctx context.Context, c *Client) (any, error) { return c.Connection(ctx) },
					wantReq: "connection_request", reqKeys: map[string]any{},
					reply: ok("connection_reply", map[string]any{"engines": map[string]any{"0": "u0", "3": "u3"}}),
					want:  map[int]string{0: "u0", 3: "u3"},
				},
				{
					name:    "QueueStatus",
					call:    func(ctx context.Context, c *Client) (any, error) { return c.QueueStatus(ctx, nil, false) },
					wantReq: "queue_request", reqKeys: map[string]any{"targets": nil, "verbose": false},
					reply: ok("queue_reply", map[string]any{"0": map[string]any{"queue": 1, "tasks": 2, "completed": 3}, "unassigned": 4}),
					want:  QueueStatus{Engines: map[int]EngineQueue{0: {Queue: 1, Tasks: 2, Completed: 3}}, Unassigned: 4},
				},
				{
					name:    "QueueStatus verbose",
					call:    func(ctx context.Context, c *Client) (any, error) { return c.QueueStatus(ctx, []int{1}, true) },
					wantReq: "queue_request", reqKeys: map[string]any{"targets": []any{int64(1)}, "verbose": true},
					reply: ok("queue_reply", map[string]any{"1": map[string]any{"queue": []string{}, "tasks": []string{"t"}, "completed": []string{"a", "b"}}, "unassigned": []string{"u"}}),
					want: QueueStatus{Engines: map[int]EngineQueue{1: {Tasks: 1, Completed: 2, QueueIDs: []string{}, TaskIDs: []string{"t"}, CompletedIDs: []string{"a", "b"}}},
						Unassigned: 1, UnassignedIDs: []string{"u"}},
				},
				{
					name:    "ResultStatus",
					call:    func(ctx context.Context, c *Client) (any, error) { return c.ResultStatus(ctx, []string{"a", "b"}) },
					wantReq: "result_request", reqKeys: map[string]any{"msg_ids": []any{"a", "b"}, "status_only": true},
					reply: ok("result_reply", map[string]any{"pending": []string{"b"}, "completed": []string{"a"}}),
					want:  ResultStatus{Pending: []string{"b"}, Completed: []string{"a"}},
				},
				{
					name:    "Results",
					call:    func(ctx context.Context, c *Client) (any, error) { return c.Results(ctx, []string{"a"}) },
					wantReq: "result_request", reqKeys: map[string]any{"msg_ids": []any{"a"}, "status_only": false},
					reply: ok("result_reply", map[string]any{"pending": []string{}, "completed": []string{"a"},
						"a": map[string]any{"header": map[string]any{"msg_id": "a"}, "metadata": map[string]any{}, "result_header": map[string]any{"msg_type": "apply_reply"},
							"result_metadata": map[string]any{"status": "ok"}, "result_content": map[string]any{"status": "ok"}, "received": t0,
							"io": map[string]any{"stdout": "hi\n", "stderr": "", "execute_input": nil, "execute_result": nil, "error": nil}}},
						[]byte("b0"), []byte("b1")),
					want: Results{ResultStatus: ResultStatus{Pending: []string{}, Completed: []string{"a"}},
						Results: map[string]Result{"a": {Header: map[string]any{"msg_id": "a"}, Metadata: map[string]any{}, ResultHeader: map[string]any{"msg_type": "apply_reply"},
							ResultMetadata: map[string]any{"status": "ok"}, ResultContent: map[string]any{"status": "ok"}, Received: t0,
							IO: map[string]any{"stdout": "hi\n", "stderr": "", "execute_input": nil, "execute_result": nil, "error": nil}}},
						Buffers: [][]byte{[]byte("b0"), []byte("b1")}},
				},
				{
					name:    "History",
					call:    func(ctx context.Context, c *Client) (any, error) { return c.History(ctx) },
					wantReq: "history_request", reqKeys: map[string]any{},
					reply: ok("history_reply", map[string]any{"history": []string{"a", "b"}}),
					want:  []string{"a", "b"},
				},
				{
					name: "DBQuery",
					call: func(ctx context.Context, c *Client) (any, error) {
						return c.DBQuery(ctx, map[string]any{"completed": map[string]any{"$gt": t0}}, []string{"msg_id", "completed"})
					},
					wantReq: "db_request", reqKeys: map[string]any{"query": map[string]any{"completed": map[string]any{"$gt": wire.FormatDate(t0)}}, "keys": []any{"msg_id", "completed"}},
					reply: ok("db_reply", map[string]any{"records": []any{map[string]any{"msg_id": "a", "completed": t1,
						"header": map[string]any{"date": "2024-01-02T03:04:05.123456+00:00"}}}, "buffer_lens": nil, "result_buffer_lens": nil}),
					want: []Record{{"msg_id": "a", "completed": t1, "header": map[string]any{"date": t0}}},
				},
				{
					name:    "Purge",
					call:    func(ctx context.Context, c *Client) (any, error) { return nil, c.Purge(ctx, []string{"a"}, []int{2}) },
					wantReq: "purge_request", reqKeys: map[string]any{"msg_ids": []any{"a"}, "engine_ids": []any{int64(2)}},
					reply: ok("purge_reply", map[string]any{}),
				},
				{
					name:    "Purge nothing",
					call:    func(ctx context.Context, c *Client) (any, error) { return nil, c.Purge(ctx, nil, nil) },
					wantReq: "purge_request", reqKeys: map[string]any{"msg_ids": []any{}, "engine_ids": []any{}},
					reply: ok("purge_reply", map[string]any{}),
				},
				{
					name:    "PurgeAll",
					call:    func(ctx context.Context, c *Client) (any, error) { return nil, c.PurgeAll(ctx) },
					wantReq: "purge_request", reqKeys: map[string]any{"msg_ids": "all", "engine_ids": []any{}},
					reply: ok("purge_reply", map[string]any{}),
				},
				{
					name:    "Resubmit",
					call:    func(ctx context.Context, c *Client) (any, error) { return c.Resubmit(ctx, []string{"a"}) },
					wantReq: "resubmit_request", reqKeys: map[string]any{"msg_ids": []any{"a"}},
					reply: ok("resubmit_reply", map[string]any{"resubmitted": map[string]any{"a": "a2"}}),
					want:  map[string]string{"a": "a2"},
				},
				{
					name:    "Shutdown",
					call:    func(ctx context.Context, c *Client) (any, error) { return nil, c.Shutdown(ctx) },
					wantReq: "shutdown_request", reqKeys: map[string]any{},
					reply: ok("shutdown_reply", map[string]any{}),
				},
			} {
				t.Run(c.name, func(t *testing.T) {
					h := clienttest.Start(t, packer, func(*wire.Message) *clienttest.Reply { return c.reply })
					cl := dial(t, h.File, Options{})
					got, err := c.call(t.Context(), cl)
					if err != nil {
						t.Fatal(err)
					}
					if c.want != nil && !reflect.DeepEqual(got, c.want) {
						t.Errorf("got  %#v\nwant %#v", got, c.want)
					}
					req := <-h.Requests
					if req.Header.MsgType != c.wantReq {
						t.Errorf("request type %q, want %q", req.Header.MsgType, c.wantReq)
					}
					if !reflect.DeepEqual(req.Content, c.reqKeys) {
						t.Errorf("request content %#v\nwant %#v", req.Content, c.reqKeys)
					}
				})
			}
		})
	}
}

// DBQuery re-slices the buffer frames per record: its buffers, then its
// result buffers (§4.2).
func TestDBQueryBuffers(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	for _, c := range []struct {
		name       string
		bufLens    any
		resultLens any
		frames     [][]byte
		want       [][2][][]byte // per record: buffers, result_buffers (nil: key absent)
		wantErr    string
	}{
		{name: "both", bufLens: []int{2, 0, 1}, resultLens: []int{1, 1, 0},
			frames: [][]byte{b("a0"), b("a1"), b("ar0"), b("br0"), b("c0")},
			want:   [][2][][]byte{{{b("a0"), b("a1")}, {b("ar0")}}, {{}, {b("br0")}}, {{b("c0")}, {}}}},
		{name: "buffers only", bufLens: []int{1, 1, 0}, resultLens: nil,
			frames: [][]byte{b("a0"), b("b0")},
			want:   [][2][][]byte{{{b("a0")}, nil}, {{b("b0")}, nil}, {{}, nil}}},
		{name: "none", want: [][2][][]byte{{nil, nil}, {nil, nil}, {nil, nil}}},
		{name: "too few frames", bufLens: []int{1, 1, 1}, frames: [][]byte{b("a0")}, wantErr: "1 buffer frames announced, 0 left"},
		{name: "too many frames", bufLens: []int{0, 0, 0}, frames: [][]byte{b("x")}, wantErr: "1 buffer frames left over"},
		{name: "wrong count", bufLens: []int{1}, wantErr: "malformed db_reply: buffer_lens"},
		{name: "negative", resultLens: []int{0, -1, 0}, wantErr: "malformed db_reply: result_buffer_lens"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := clienttest.Start(t, "msgpack", func(*wire.Message) *clienttest.Reply {
				return ok("db_reply", map[string]any{
					"records":     []any{map[string]any{"msg_id": "a"}, map[string]any{"msg_id": "b"}, map[string]any{"msg_id": "c"}},
					"buffer_lens": c.bufLens, "result_buffer_lens": c.resultLens,
				}, c.frames...)
			})
			recs, err := dial(t, h.File, Options{}).DBQuery(t.Context(), nil, []string{"buffers", "result_buffers"})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, rec := range recs {
				for j, key := range []string{"buffers", "result_buffers"} {
					got, present := rec[key]
					if want := c.want[i][j]; (want == nil) != !present || (present && !reflect.DeepEqual(got, want)) {
						t.Errorf("record %d %s = %q (present %v), want %q", i, key, got, present, want)
					}
				}
			}
		})
	}
}

func TestErrorReply(t *testing.T) {
	h := clienttest.Start(t, "msgpack", func(*wire.Message) *clienttest.Reply {
		return clienttest.Error("hub_error", &wire.Error{Name: "KeyError", Value: "No such msg(s): ['x']", Traceback: []string{"line 1"}})
	})
	_, err := dial(t, h.File, Options{}).Resubmit(t.Context(), []string{"x"})
	var we *wire.Error
	if !errors.As(err, &we) || we.Name != "KeyError" || we.Value != "No such msg(s): ['x']" || !reflect.DeepEqual(we.Traceback, []string{"line 1"}) {
		t.Fatalf("err = %#v, want the hub's KeyError", err)
	}
	if err.Error() != "KeyError: No such msg(s): ['x']" {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestMalformedReplies(t *testing.T) {
	for _, c := range []struct {
		name    string
		call    func(ctx context.Context, c *Client) error
		content map[string]any
		want    string
	}{
		{"no status", func(ctx context.Context, c *Client) error { _, err := c.History(ctx); return err }, map[string]any{}, "status <nil>"},
		{"history type", func(ctx context.Context, c *Client) error { _, err := c.History(ctx); return err }, map[string]any{"status": "ok", "history": 5}, "history: unexpected int64 5"},
		{"engine id", func(ctx context.Context, c *Client) error { _, err := c.Connection(ctx); return err }, map[string]any{"status": "ok", "engines": map[string]any{"x": "u"}}, "engines.x"},
		{"queue", func(ctx context.Context, c *Client) error { _, err := c.QueueStatus(ctx, nil, false); return err },
			map[string]any{"status": "ok", "0": map[string]any{"queue": "x"}}, "0.queue"},
		{"result entry", func(ctx context.Context, c *Client) error { _, err := c.Results(ctx, []string{"a"}); return err },
			map[string]any{"status": "ok", "pending": []any{}, "completed": []any{"a"}}, "a: unexpected <nil>"},
		{"resubmitted", func(ctx context.Context, c *Client) error { _, err := c.Resubmit(ctx, []string{"a"}); return err },
			map[string]any{"status": "ok", "resubmitted": map[string]any{"a": 1}}, "resubmitted.a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := clienttest.Start(t, "msgpack", func(*wire.Message) *clienttest.Reply {
				return &clienttest.Reply{MsgType: "x_reply", Content: c.content}
			})
			err := c.call(t.Context(), dial(t, h.File, Options{}))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// A hub that never answers gives a clear timeout error, within the
// configured timeout, never a hang.
func TestTimeout(t *testing.T) {
	h := clienttest.Start(t, "msgpack", func(*wire.Message) *clienttest.Reply { return nil })
	c := dial(t, h.File, Options{Timeout: time.Second})
	_, err := c.History(t.Context())
	want := fmt.Sprintf("hub at tcp://127.0.0.1:%d did not answer history_request within 1s", h.File.Registration)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q wrapping DeadlineExceeded", err, want)
	}
	// The caller's shorter deadline wins, and is the one reported.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.History(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer history_request within ") || strings.Contains(err.Error(), "within 1s") {
		t.Errorf("err = %v, want a timeout of about 50ms", err)
	}
	// Cancellation is not a timeout.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if _, err := c.History(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	cf := connfile.Client{Interface: "tcp://127.0.0.1", Registration: port, Pack: "json", Unpack: "json", SignatureScheme: "hmac-sha256"}
	start := time.Now()
	_, err = Dial(t.Context(), cf, Options{Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("hub at tcp://127.0.0.1:%d is not reachable", port)) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Dial took %v with a 300ms timeout", d)
	}
}

// A peer that accepts TCP but never completes the ZMTP handshake must not
// hang Dial: zmq4 alone would wait forever.
func TestSilentPeer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // hold it open, say nothing
		}
	}()
	cf := connfile.Client{Interface: "tcp://127.0.0.1", Registration: l.Addr().(*net.TCPAddr).Port, Pack: "json", Unpack: "json", SignatureScheme: "hmac-sha256"}
	if _, err := Dial(t.Context(), cf, Options{Timeout: 300 * time.Millisecond}); err == nil {
		t.Fatal("Dial to a silent peer succeeded")
	}
}

func TestBadConnectionFile(t *testing.T) {
	for _, cf := range []connfile.Client{
		{Pack: "pickle", Unpack: "pickle", SignatureScheme: "hmac-sha256"},
		{Pack: "json", Unpack: "json", SignatureScheme: "hmac-sha3"},
	} {
		if _, err := Dial(t.Context(), cf, Options{}); err == nil {
			t.Errorf("Dial(%+v) succeeded", cf)
		}
	}
}

// Replies are matched by parent msg_id: answers in reverse order reach the
// right callers, and strangers (other parents, bad signatures) are ignored.
func TestMatching(t *testing.T) {
	const n = 20
	var held []*wire.Message
	h := clienttest.StartRaw(t, "msgpack", func(h *clienttest.Hub, m *wire.Message) {
		held = append(held, m)
		if len(held) < n {
			return
		}
		for i := len(held) - 1; i >= 0; i-- {
			req := held[i]
			stranger := h.Session.NewMessage("history_reply", map[string]any{"status": "ok", "history": []string{"stranger"}}, nil)
			stranger.Identities = req.Identities
			frames, _ := h.Session.Encode(stranger)
			h.SendFrames(frames)
			forged := h.Session.NewMessage("history_reply", map[string]any{"status": "ok", "history": []string{"forged"}}, &req.Header)
			forged.Identities = req.Identities
			frames, _ = h.Session.Encode(forged)
			frames[2] = []byte(strings.Repeat("0", 64)) // signature
			h.SendFrames(frames)
			h.Reply(req, ok("history_reply", map[string]any{"history": []string{req.Header.MsgID}}))
		}
	})
	c := dial(t, h.File, Options{})
	var wg sync.WaitGroup
	got := make([][]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { got[i], errs[i] = c.History(t.Context()) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil || len(got[i]) != 1 || seen[got[i][0]] {
			t.Fatalf("call %d: %v %v", i, got[i], errs[i])
		}
		seen[got[i][0]] = true
	}
	// Each reply named its own request: the n msg_ids the hub received.
	for range n {
		if m := <-h.Requests; !seen[m.Header.MsgID] {
			t.Errorf("request %s got no reply of its own", m.Header.MsgID)
		}
	}
}

func TestClose(t *testing.T) {
	h := clienttest.Start(t, "msgpack", func(*wire.Message) *clienttest.Reply { return nil })
	c, err := Dial(t.Context(), h.File, Options{Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.History(context.Background()); errc <- err }()
	<-h.Requests // the call is waiting for its reply
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("call in progress: err = %v, want ErrClosed", err)
	}
	if _, err := c.History(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: err = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// historyHub answers every history_request with its own msg_id, and
// requests whose content asks for it with a reply of that many bytes.
func historyHub(req *wire.Message) *clienttest.Reply {
	if n, _ := req.Content["big"].(int64); n > 0 {
		return ok("history_reply", map[string]any{"history": []string{strings.Repeat("x", int(n))}})
	}
	return ok("history_reply", map[string]any{"history": []string{req.Header.MsgID}})
}

// untilAnswered calls History until it succeeds, at most 3 times: the
// first call after a drop may go out before the client has seen the drop,
// and then fails with ErrConnectionLost, never with a timeout.
func untilAnswered(t *testing.T, c *Client) {
	t.Helper()
	for range 3 {
		_, err := c.History(t.Context())
		if err == nil {
			return
		}
		if !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("err = %v, want ErrConnectionLost", err)
		}
	}
	t.Fatal("no answer in 3 calls")
}

// A Client survives its hub restarting on the same port, as hubctl watch
// needs.
func TestHubRestart(t *testing.T) {
	h := clienttest.Start(t, "msgpack", historyHub)
	c := dial(t, h.File, Options{Timeout: 5 * time.Second})
	if _, err := c.History(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		h = h.Restart()
		untilAnswered(t, c)
	}
}

// A call waiting for its reply when the hub goes away fails with
// ErrConnectionLost, not after its timeout.
func TestDropInFlight(t *testing.T) {
	h := clienttest.Start(t, "msgpack", func(*wire.Message) *clienttest.Reply { return nil })
	c := dial(t, h.File, Options{Timeout: -1})
	errc := make(chan error, 1)
	go func() { _, err := c.History(t.Context()); errc <- err }()
	<-h.Requests // the call is waiting for its reply
	h.Stop()
	if err := <-errc; !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), "history_request to "+c.Addr()) {
		t.Errorf("err = %v, want ErrConnectionLost naming the call and hub", err)
	}
}

// A reply over Options.MaxMessageSize fails its call with an error naming
// the limit, and the next call works on a new connection.
func TestOversizeReply(t *testing.T) {
	h := clienttest.Start(t, "msgpack", historyHub)
	c := dial(t, h.File, Options{MaxMessageSize: 4096})
	_, err := c.call(t.Context(), "history_request", map[string]any{"big": 8192})
	if !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), "MaxMessageSize 4096") {
		t.Fatalf("err = %v, want ErrConnectionLost naming MaxMessageSize 4096", err)
	}
	untilAnswered(t, c)
	// Within the limit, the same reply is fine.
	c2 := dial(t, h.File, Options{MaxMessageSize: 1 << 20})
	if _, err := c2.call(t.Context(), "history_request", map[string]any{"big": 8192}); err != nil {
		t.Errorf("8 KiB reply under a 1 MiB limit: %v", err)
	}
}

// A hub that vanished without closing the connection (a black-holing
// network, a frozen host) leaves a call timing out; the next call must go
// out on a fresh connection instead of the deaf one.
func TestTimeoutRedials(t *testing.T) {
	h := clienttest.Start(t, "msgpack", historyHub)
	p := startBlackHoleProxy(t, h.File.Registration)
	cf := h.File
	cf.Registration = p.port
	c := dial(t, cf, Options{})
	if _, err := c.History(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.swallowOpen()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.History(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call on a deaf connection: err = %v, want a timeout", err)
	}
	if _, err := c.History(t.Context()); err != nil {
		t.Errorf("call after the timeout: %v, want an answer on a new connection", err)
	}
}

// blackHoleProxy forwards TCP connections on 127.0.0.1 to a port; after
// swallowOpen, the connections open then keep discarding what the client
// sends, without closing. Later connections are forwarded as usual.
type blackHoleProxy struct {
	port int
	mu   sync.Mutex
	deaf []*atomic.Bool
}

func startBlackHoleProxy(t *testing.T, to int) *blackHoleProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackHoleProxy{port: l.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", to))
			if err != nil {
				in.Close()
				continue
			}
			deaf := new(atomic.Bool)
			p.mu.Lock()
			conns = append(conns, in, out)
			p.deaf = append(p.deaf, deaf)
			p.mu.Unlock()
			wg.Go(func() { io.Copy(in, out) })
			wg.Go(func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := in.Read(buf)
					if err != nil {
						out.Close()
						return
					}
					if !deaf.Load() {
						out.Write(buf[:n])
					}
				}
			})
		}
	})
	return p
}

func (p *blackHoleProxy) swallowOpen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.deaf {
		d.Store(true)
	}
}
