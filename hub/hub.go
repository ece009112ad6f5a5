package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/google/uuid"

	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/wire"
	"github.com/taskhub/taskhub/wire/transport"
)

// Hub is an ipyparallel-compatible controller. Create it with New, bind
// its sockets with Listen (optional: Run listens too), then call Run once.
//
// Listen, ClientInfo, EngineInfo, ConnectionFiles and Stats may be called
// from any goroutine; everything else happens inside Run.
type Hub struct {
	cfg  Config
	db   taskdb.DB
	log  *slog.Logger // throttled by logs
	logs *limiter
	sess *wire.Session
	key  string

	mu       sync.Mutex // guards the fields below, for Listen/Run/Close
	socks    [numSockets]*hubSocket
	sockStop context.CancelFunc // closes the zmq4 sockets' context
	files    []string           // connection files written by Listen
	ran      bool

	inbox    chan inbound  // pumps -> state goroutine
	events   chan func()   // timers and the DB goroutine -> state goroutine
	dbq      chan dbOp     // state goroutine -> DB goroutine
	loopDone chan struct{} // closed when the state goroutine stops serving
	stop     chan struct{} // closed after the DB flush: owners drain and exit
	quit     chan struct{} // closed by shutdown_request
	once     sync.Once     // closes quit

	st    state // owned by the state goroutine
	stats counters
}

// counters are the hub's monotonic counters, updated atomically.
type counters struct {
	badMessages atomic.Int64 // undecodable, unsigned, forged or replayed
	sendErrors  atomic.Int64
	dbErrors    atomic.Int64
	tasks       atomic.Int64 // requests accepted (task and mux)
	results     atomic.Int64 // requests finished
	duplicates  atomic.Int64 // requests refused: their msg_id was pending
	// Messages dropped for slow peers are counted by the transport, in
	// cfg.Transport.Counters.
}

// Stats is a snapshot of the hub's counters.
type Stats struct {
	BadMessages int64 // dropped: undecodable, unsigned, forged or replayed
	SendErrors  int64 // socket sends that failed
	DBErrors    int64 // task-database operations that failed (logged)
	Tasks       int64 // requests accepted and recorded: load-balanced and direct (mux)
	Results     int64 // of those, finished: engines' results and the scheduler's own error replies
	Duplicates  int64 // requests refused with an error reply because their msg_id was still pending
	Dropped     int64 // messages not sent: the peer's send queue was full (Config.Transport.MaxSendQueue)
	SlowPeers   int64 // peers disconnected: a write to them (up to 1 MiB) took over Config.Transport.WriteTimeout
}

// Stats returns the counters. Safe for concurrent use.
func (h *Hub) Stats() Stats {
	return Stats{
		BadMessages: h.stats.badMessages.Load(),
		SendErrors:  h.stats.sendErrors.Load(),
		DBErrors:    h.stats.dbErrors.Load(),
		Tasks:       h.stats.tasks.Load(),
		Results:     h.stats.results.Load(),
		Duplicates:  h.stats.duplicates.Load(),
		Dropped:     h.cfg.Transport.Counters.Dropped.Load(),
		SlowPeers:   h.cfg.Transport.Counters.SlowPeers.Load(),
	}
}

// New returns a Hub storing task records in db and logging to log, the
// transport's lines included: at most logBurst lines a second of each
// message at Info and above, then a summary of how many were suppressed.
// It fails with every invalid Config field joined. It binds nothing yet.
func New(cfg Config, db taskdb.DB, log *slog.Logger) (*Hub, error) {
	if db == nil {
		return nil, errors.New("hub: nil taskdb.DB")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	logs := newLimiter(logBurst, logInterval)
	log = slog.New(newThrottle(log.Handler(), logs))
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Transport.Logger == nil {
		cfg.Transport.Logger = log.With("component", "transport")
	}
	if cfg.Transport.Counters == nil {
		cfg.Transport.Counters = new(transport.Counters)
	}
	key := cfg.Key
	if key == "" && !cfg.Unsigned {
		key = uuid.NewString() // as ipcontroller generates it
	}
	sess, err := wire.NewSession(wire.Config{
		Key:             []byte(key),
		SignatureScheme: cfg.SignatureScheme,
		Packer:          cfg.Packer,
		ReplayHistory:   cfg.ReplayHistory,
		Username:        "hub",
	})
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	pick, _ := schemeByName(cfg.Scheme) // validated by withDefaults
	h := &Hub{
		cfg:      cfg,
		db:       db,
		log:      log,
		logs:     logs,
		sess:     sess,
		key:      key,
		inbox:    make(chan inbound, 1024),
		events:   make(chan func(), 64),
		dbq:      make(chan dbOp, cfg.DBQueue),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		quit:     make(chan struct{}),
	}
	h.st = newState(h, pick, cfg)
	return h, nil
}

// Listen binds every socket and writes the connection files (if
// Config.ConnectionDir is set). After it, ClientInfo, EngineInfo and
// ConnectionFiles report the bound ports, so a program can print them
// before Run serves. Calling it again does nothing.
func (h *Hub) Listen() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.socks[0] != nil {
		return nil
	}
	if h.ran {
		return errors.New("hub: closed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	socks, err := bind(ctx, h.cfg)
	if err != nil {
		cancel()
		return err
	}
	h.socks, h.sockStop = socks, cancel
	if h.cfg.ConnectionDir != "" {
		if err := h.writeFiles(); err != nil {
			closeAll(socks)
			cancel()
			h.socks = [numSockets]*hubSocket{}
			return err
		}
	}
	h.log.Info("listening", "ip", h.cfg.IP, "registration", socks[sockQuery].port, "files", h.files)
	return nil
}

// writeFiles writes both connection files; h.mu is held.
func (h *Hub) writeFiles() error {
	c, e := h.infoLocked()
	paths := [2]string{filepath.Join(h.cfg.ConnectionDir, connfile.ClientFile), filepath.Join(h.cfg.ConnectionDir, connfile.EngineFile)}
	for i, v := range []any{c, e} {
		if err := connfile.Write(paths[i], v); err != nil {
			h.removeFiles()
			return fmt.Errorf("hub: %w", err)
		}
		h.files = append(h.files, paths[i])
	}
	return nil
}

func (h *Hub) removeFiles() {
	for _, p := range h.files {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			h.log.Warn("remove connection file", "path", p, "err", err)
		}
	}
	h.files = nil
}

// ConnectionFiles returns the paths of the client and engine connection
// files, or empty strings when none were written.
func (h *Hub) ConnectionFiles() (client, engine string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.files) != 2 {
		return "", ""
	}
	return h.files[0], h.files[1]
}

// ClientInfo returns the client connection file's content. The ports are
// zero before Listen.
func (h *Hub) ClientInfo() connfile.Client {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, _ := h.infoLocked()
	return c
}

// EngineInfo returns the engine connection file's content. The ports are
// zero before Listen.
func (h *Hub) EngineInfo() connfile.Engine {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, e := h.infoLocked()
	return e
}

func (h *Hub) infoLocked() (connfile.Client, connfile.Engine) {
	port := func(id sockID) int {
		if h.socks[id] == nil {
			return 0
		}
		return h.socks[id].port
	}
	loc := h.cfg.Location
	if loc == "" {
		loc, _ = os.Hostname()
	}
	iface := "tcp://" + h.cfg.IP
	c := connfile.Client{
		Interface: iface, Registration: port(sockQuery),
		Control: port(sockClientControl), Mux: port(sockClientMux), Task: port(sockClientTask),
		TaskScheme: h.cfg.Scheme, IOPub: port(sockClientIOPub), Notification: port(sockNotification),
		Broadcast: port(sockClientBroadcast), Key: h.key, Location: loc,
		Pack: h.sess.PackName(), Unpack: h.sess.UnpackName(), SignatureScheme: h.sess.SignatureScheme(),
	}
	e := connfile.Engine{
		Interface: iface, Registration: port(sockQuery),
		Control: port(sockEngineControl), Mux: port(sockEngineMux), Task: port(sockEngineTask),
		IOPub: port(sockEngineIOPub), HBPing: port(sockHBPing), HBPong: port(sockHBPong),
		Broadcast: []int{port(sockEngineBroadcast)}, Key: h.key, Location: loc,
		Pack: h.sess.PackName(), Unpack: h.sess.UnpackName(), SignatureScheme: h.sess.SignatureScheme(),
	}
	return c, e
}

// Close releases the sockets and files of a hub that listened but will
// not run. It does nothing after Run.
func (h *Hub) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ran || h.socks[0] == nil {
		return nil
	}
	h.ran = true
	closeAll(h.socks)
	h.socks = [numSockets]*hubSocket{}
	h.sockStop()
	h.removeFiles()
	return nil
}

// Run serves until ctx is cancelled or a client sends shutdown_request,
// then shuts down: new requests are refused, results of tasks already on
// engines may land, the task database queue is flushed, sockets are
// closed and the connection files removed, all within
// Config.ShutdownTimeout. It returns nil after a clean shutdown, or the
// error that prevented serving. Run may be called once.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.Listen(); err != nil {
		return err
	}
	h.mu.Lock()
	if h.ran {
		h.mu.Unlock()
		return errors.New("hub: Run called twice")
	}
	h.ran = true
	socks := h.socks
	h.mu.Unlock()

	var owners, pumps sync.WaitGroup
	for _, s := range socks {
		owners.Go(func() { h.serveSocket(s) })
		if s.id.kind() != zmq4.Pub {
			pumps.Go(func() { h.pump(s) })
		}
	}
	dbDone := make(chan struct{})
	go h.serveDB(dbDone)

	deadline := h.st.loop(ctx) // the state goroutine is this one
	close(h.loopDone)

	// Flush the DB queue, then let the owners send what is queued (query
	// replies included) and close their sockets; the pumps then end.
	close(h.dbq)
	var errs []error
	if !waitUntil(dbDone, deadline) {
		errs = append(errs, errors.New("hub: shutdown: task database queue not flushed in time"))
	}
	close(h.stop)
	ownersDone := make(chan struct{})
	go func() { owners.Wait(); pumps.Wait(); close(ownersDone) }()
	if !waitUntil(ownersDone, deadline.Add(time.Second)) {
		errs = append(errs, errors.New("hub: shutdown: sockets not closed in time"))
	}
	h.sockStop()
	h.mu.Lock()
	h.removeFiles()
	h.mu.Unlock()
	h.logs.flushAll()
	h.log.Info("stopped", "stats", h.Stats())
	return errors.Join(errs...)
}

func waitUntil(done <-chan struct{}, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// requestShutdown starts the shutdown, as a cancelled Run context does.
func (h *Hub) requestShutdown() { h.once.Do(func() { close(h.quit) }) }

// post runs fn on the state goroutine, unless it has stopped serving. It
// blocks until the state goroutine takes fn, so neither the state
// goroutine nor the DB goroutine (which the state goroutine may be
// waiting for) may call it directly.
func (h *Hub) post(fn func()) {
	select {
	case h.events <- fn:
	case <-h.loopDone:
	}
}

// after runs fn on the state goroutine after d, unless the returned
// timer is stopped first.
func (h *Hub) after(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() { h.post(fn) })
}
