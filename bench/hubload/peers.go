package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/wire"
	"github.com/taskhub/taskhub/wire/transport"
)

// sock is a dialled socket with a receive pump: the pump goroutine only
// calls Recv; the goroutine that owns the peer calls Send.
type sock struct {
	zs zmq4.Socket
	in chan [][]byte
}

func dial(ctx context.Context, typ zmq4.SocketType, id string, eps ...string) (*sock, error) {
	var opts []zmq4.Option
	if id != "" {
		opts = append(opts, zmq4.WithID(zmq4.SocketIdentity(id)))
	}
	var zs zmq4.Socket
	switch typ {
	case zmq4.Dealer:
		zs = zmq4.NewDealer(ctx, opts...)
	case zmq4.Router:
		zs = zmq4.NewRouter(ctx, opts...)
	case zmq4.Sub:
		zs = zmq4.NewSub(ctx, opts...)
	default:
		return nil, fmt.Errorf("socket type %s", typ)
	}
	// Dial through the hardened transport: it speaks plain ZMTP to either
	// controller, but buffers reads and coalesces writes, which cuts the
	// generator's own CPU per task (zmq4's tcp makes a syscall per frame).
	scheme, err := transport.Register(transport.Options{})
	if err != nil {
		zs.Close()
		return nil, err
	}
	for _, ep := range eps {
		if err := zs.Dial(strings.Replace(ep, "tcp://", scheme+"://", 1)); err != nil {
			zs.Close()
			return nil, fmt.Errorf("dial %s: %w", ep, err)
		}
	}
	if typ == zmq4.Sub {
		if err := zs.SetOption(zmq4.OptionSubscribe, ""); err != nil {
			zs.Close()
			return nil, err
		}
	}
	s := &sock{zs: zs, in: make(chan [][]byte, 1024)}
	go func() {
		defer zs.Close()
		for {
			m, err := zs.Recv()
			if err != nil {
				return
			}
			if m.Type == zmq4.CmdMsg {
				continue
			}
			select {
			case s.in <- m.Frames:
			case <-ctx.Done():
				return
			}
		}
	}()
	return s, nil
}

func (s *sock) send(sess *wire.Session, m *wire.Message) error {
	frames, err := sess.Encode(m)
	if err != nil {
		return err
	}
	return s.sendFrames(frames)
}

func (s *sock) sendFrames(frames [][]byte) error { return s.zs.Send(zmq4.NewMsgFrom(frames...)) }

// request sends m and waits for its reply: the message whose parent is m
// or, since the reference sends registration_reply with an empty parent,
// the first message of the reply type.
func (s *sock) request(ctx context.Context, sess *wire.Session, m *wire.Message, timeout time.Duration) (*wire.Message, error) {
	if err := s.send(sess, m); err != nil {
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case f := <-s.in:
			r, err := sess.Decode(f)
			if err == nil && (r.Parent.MsgID == m.Header.MsgID || r.Parent.IsZero() && r.Header.MsgType == replyType(m.Header.MsgType)) {
				return r, nil
			}
		case <-t.C:
			return nil, fmt.Errorf("no reply to %s within %v", m.Header.MsgType, timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// engine is a fake engine that answers every request at once.
type engine struct {
	sess             *wire.Session
	uuid             string
	id               any // the engine id the controller assigned
	reg, shell, ping *sock
	pong             zmq4.Socket

	// Reply templates: headers by request type, metadata, content.
	ids     *idGen
	headers map[string]*template
	meta    *template
	ok      []byte
}

func startEngine(ctx context.Context, s *wire.Session, ef connfile.Engine) (*engine, error) {
	e := &engine{sess: s, uuid: s.ID(), ids: newIDGen(s), headers: map[string]*template{}}
	started, _ := wire.ParseDate(datePlaceholder)
	// The metadata of ipyparallel's engine kernel (init_metadata, finish_metadata).
	meta := map[string]any{"started": started, "dependencies_met": true, "engine": e.uuid,
		"is_broadcast": false, "is_coalescing": false, "original_msg_id": "", "status": "ok"}
	var err error
	if e.meta, err = newTemplate(s, meta, datePlaceholder); err != nil {
		return nil, err
	}
	if e.ok, err = s.Pack(map[string]any{"status": "ok"}); err != nil {
		return nil, err
	}
	reg, err := dial(ctx, zmq4.Dealer, e.uuid, ef.Endpoint(ef.Registration))
	if err != nil {
		return nil, err
	}
	r, err := reg.request(ctx, s, s.NewMessage("registration_request", map[string]any{"uuid": e.uuid}, nil), 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("engine registration: %w", err)
	}
	if r.Content["status"] != "ok" {
		return nil, fmt.Errorf("engine registration: %v", r.Content)
	}
	e.reg, e.id = reg, r.Content["id"]
	if e.shell, err = dial(ctx, zmq4.Router, e.uuid, ef.Endpoint(ef.Mux), ef.Endpoint(ef.Task), ef.Endpoint(ef.Control)); err != nil {
		return nil, err
	}
	if e.ping, err = dial(ctx, zmq4.Sub, "", ef.Endpoint(ef.HBPing)); err != nil {
		return nil, err
	}
	pong, err := dial(ctx, zmq4.Dealer, e.uuid, ef.Endpoint(ef.HBPong))
	if err != nil {
		return nil, err
	}
	e.pong = pong.zs
	return e, nil
}

// unregister tells the controller that the engine leaves, as ipyparallel
// engines do when they stop, so that a long-lived controller does not
// route tasks to it until its heart is declared dead. Only the goroutine
// that started the engine uses reg.
func (e *engine) unregister() error {
	return e.reg.send(e.sess, e.sess.NewMessage("unregistration_request", map[string]any{"id": e.id}, nil))
}

// serve echoes heartbeats and answers requests until ctx ends.
func (e *engine) serve(ctx context.Context) {
	for {
		select {
		case f := <-e.ping.in:
			e.pong.Send(zmq4.NewMsgFrom(f...))
		case f := <-e.shell.in:
			e.reply(f)
		case <-ctx.Done():
			return
		}
	}
}

// reply answers a request with an ok reply whose parent is the request's
// header as received, as a kernel's is. A request that does not verify is
// dropped, as the kernel's session drops it.
func (e *engine) reply(f [][]byte) {
	m, err := e.sess.DecodeHeaders(f)
	if err != nil {
		return
	}
	h := e.headers[m.Header.MsgType]
	if h == nil {
		if h, err = headerTemplate(e.sess, e.ids, replyType(m.Header.MsgType)); err != nil {
			slog.Warn("engine reply", "err", err)
			return
		}
		e.headers[m.Header.MsgType] = h
	}
	date := stamp()
	parent := m.Raw[len(m.Identities)+2]
	e.shell.sendFrames(e.sess.EncodePacked(m.Identities, [4][]byte{h.fill(e.ids.next(), date), parent, e.meta.fill(date), e.ok}, nil))
}

func replyType(t string) string {
	if len(t) > len("_request") && t[len(t)-len("_request"):] == "_request" {
		return t[:len(t)-len("_request")] + "_reply"
	}
	return t + "_reply"
}

// client submits tasks and queries.
type client struct {
	sess        *wire.Session
	task, query *sock

	// The no-op request: header template, then parent, metadata and
	// content packed.
	ids     *idGen
	request *template
	packed  [3][]byte
}

func dialClient(ctx context.Context, s *wire.Session, cf connfile.Client) (*client, error) {
	c := &client{sess: s, ids: newIDGen(s)}
	var err error
	if c.request, err = headerTemplate(s, c.ids, "apply_request"); err != nil {
		return nil, err
	}
	// The scheduling metadata an ipyparallel LoadBalancedView sends.
	md := map[string]any{"after": []any{}, "follow": []any{}, "targets": []any{}, "retries": 0, "timeout": 0.0}
	for i, v := range []any{map[string]any{}, md, map[string]any{}} {
		if c.packed[i], err = s.Pack(v); err != nil {
			return nil, err
		}
	}
	if c.task, err = dial(ctx, zmq4.Dealer, "", cf.Endpoint(cf.Task)); err != nil {
		return nil, err
	}
	if c.query, err = dial(ctx, zmq4.Dealer, "", cf.Endpoint(cf.Registration)); err != nil {
		return nil, err
	}
	return c, nil
}

// waitEngines polls connection_request until the engines with the given
// uuids are registered (the reference lists an engine only after its
// first heartbeats, when its schedulers start using it).
func (c *client) waitEngines(ctx context.Context, uuids []string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r, err := c.query.request(ctx, c.sess, c.sess.NewMessage("connection_request", nil, nil), 10*time.Second)
		if err != nil {
			return err
		}
		es, _ := r.Content["engines"].(map[string]any)
		registered := make(map[any]bool, len(es))
		for _, uuid := range es {
			registered[uuid] = true
		}
		if !slices.ContainsFunc(uuids, func(u string) bool { return !registered[u] }) {
			return nil
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.New("the engines were not listed as registered within 60s")
}

// pipeline keeps window no-op tasks in flight until ctx ends.
func (c *client) pipeline(ctx context.Context, window int, m *meter) {
	sent := make(map[string]time.Time, window)
	submit := func() {
		id := c.ids.next()
		sent[string(id)] = time.Now()
		c.task.sendFrames(c.sess.EncodePacked(nil, [4][]byte{c.request.fill(id, stamp()), c.packed[0], c.packed[1], c.packed[2]}, nil))
	}
	for range window {
		submit()
	}
	for {
		select {
		case f := <-c.task.in:
			// Verified as the ipyparallel client's session does; only the
			// content is unpacked, for the status.
			r, err := c.sess.DecodeHeaders(f)
			if err != nil {
				continue
			}
			if t0, ok := sent[r.Parent.MsgID]; ok {
				delete(sent, r.Parent.MsgID)
				content, err := c.sess.Unpack(r.Raw[len(r.Identities)+5])
				m.task(r.Parent.MsgID, time.Since(t0), err == nil && content["status"] == "ok")
				submit()
			}
		case <-ctx.Done():
			return
		}
	}
}

// queryLoop sends db_request after db_request until ctx ends. kind
// chooses the query: the last completed tasks by msg_id, or every
// completed record.
func (c *client) queryLoop(ctx context.Context, kind string, m *meter) {
	for ctx.Err() == nil {
		q := map[string]any{"completed": map[string]any{"$ne": nil}}
		if kind == queryRecent {
			q = map[string]any{"msg_id": map[string]any{"$in": m.completed()}}
		}
		req := c.sess.NewMessage("db_request", map[string]any{"query": q, "keys": []any{"msg_id", "completed"}}, nil)
		t0 := time.Now()
		r, err := c.query.request(ctx, c.sess, req, 30*time.Second)
		if err != nil {
			if ctx.Err() == nil { // not the end of the run: the query figures stop here
				slog.Warn("db_request loop stopped", "err", err)
			}
			return
		}
		if r.Content["status"] != "ok" {
			slog.Warn("db_request loop stopped", "reply", r.Content)
			return
		}
		m.query(time.Since(t0))
	}
}
