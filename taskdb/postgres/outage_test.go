package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/postgres/pgtest"
	"github.com/taskhub/taskhub/taskdb/query"
)

// proxy forwards TCP connections to a server until cut, which drops them
// and refuses new ones until restore.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]bool)}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			continue
		}
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(s, c) })
		p.wg.Go(func() { pipe(c, s) })
	}
}

// track records a live pair, or closes it if the proxy went down.
func (p *proxy) track(c, s net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		c.Close()
		s.Close()
		return false
	}
	p.conns[c], p.conns[s] = true, true
	return true
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// via returns dsn pointed at addr.
func via(t *testing.T, dsn, addr string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "postgres", Host: addr, Path: "/" + cfg.Database, RawQuery: "sslmode=disable"}
	u.User = url.User(cfg.User)
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	}
	return u.String()
}

// An outage under load: writes are buffered up to the bound, fail with
// ErrUnavailable only beyond it, reads fail with ErrUnavailable, and once
// the server is back every acknowledged write is in the table, in order.
func TestOutage(t *testing.T) {
	dsn := pgtest.DSN(t)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	table := pgtest.Table(t, dsn)
	const maxPending = 500
	db := open(t, Options{DSN: via(t, dsn, px.ln.Addr().String()), Table: table, BatchSize: 50, MaxPending: maxPending})
	ctx := t.Context()

	sub := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(i int) error {
		return db.AddRecord(ctx, fmt.Sprint("r", i), taskdb.Record{"submitted": sub.Add(time.Duration(i) * time.Millisecond)})
	}
	const before = 300
	for i := range before {
		if err := add(i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.History(ctx); err != nil {
		t.Fatal(err)
	}

	px.cut()
	acked := before
	// Updates of stored records and new records, until the bound.
	for i := 0; ; i++ {
		var err error
		if i%2 == 0 && i/2 < before {
			err = db.UpdateRecord(ctx, fmt.Sprint("r", i/2), taskdb.Record{"stdout": "during"})
		} else {
			err = add(acked)
			if err == nil {
				acked++
			}
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, taskdb.ErrUnavailable) {
			t.Fatalf("write %d during the outage: %v, want ErrUnavailable", i, err)
		}
		if s := db.Stats(); s.Pending != maxPending || !s.Down {
			t.Fatalf("ErrUnavailable with %+v, want it only with %d writes pending", s, maxPending)
		}
		break
	}
	if _, err := db.GetRecord(ctx, "r0"); !errors.Is(err, taskdb.ErrUnavailable) {
		t.Errorf("GetRecord during the outage: %v, want ErrUnavailable", err)
	}
	if _, err := db.FindRecords(ctx, query.MustParse(`{}`), nil); !errors.Is(err, taskdb.ErrUnavailable) {
		t.Errorf("FindRecords during the outage: %v, want ErrUnavailable", err)
	}

	px.restore()
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := db.History(wait)
		if err == nil {
			break
		}
		if !errors.Is(err, taskdb.ErrUnavailable) {
			t.Fatalf("History after the outage: %v", err)
		}
		select {
		case <-wait.Done():
			t.Fatalf("the queue did not recover: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if s := db.Stats(); s.Pending != 0 || s.Rejected != 0 {
		t.Errorf("after recovery: %+v", s)
	}

	// A second DB on the table reads what the first acknowledged.
	other := open(t, Options{DSN: dsn, Table: table})
	h, err := other.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != acked {
		t.Fatalf("%d records stored, %d acknowledged", len(h), acked)
	}
	for i, id := range h {
		if id != fmt.Sprint("r", i) {
			t.Fatalf("history[%d] = %s, want r%d", i, id, i)
		}
	}
	updated, err := other.FindRecords(ctx, query.MustParse(`{"stdout":"during"}`), []string{"stdout"})
	if err != nil {
		t.Fatal(err)
	}
	if len(updated) == 0 {
		t.Error("no update made during the outage was stored")
	}
}

// The server itself stops and starts again under load: writes go on
// (buffered, none refused below the bound) and none acknowledged is lost.
func TestServerRestart(t *testing.T) {
	c := pgtest.NewCluster(t)
	db := open(t, Options{DSN: c.DSN, Table: "tasks", BatchSize: 50})
	ctx := t.Context()

	var acked atomic.Int64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := db.AddRecord(ctx, fmt.Sprint("r", i), taskdb.Record{"submitted": time.Unix(int64(i), 0).UTC()}); err != nil {
				done <- err
				return
			}
			acked.Store(int64(i + 1))
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				t.Fatalf("waited a minute for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("writes", func() bool { return acked.Load() >= 500 })
	c.Stop(t)
	waitFor("the outage to be noticed", func() bool { return db.Stats().Down })
	during := acked.Load()
	waitFor("writes during the outage", func() bool { return acked.Load() >= during+500 })
	c.Start(t)
	waitFor("recovery", func() bool { return !db.Stats().Down })
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("AddRecord: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := open(t, Options{DSN: c.DSN, Table: "tasks"}).History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(h)) != acked.Load() {
		t.Fatalf("%d records stored, %d acknowledged", len(h), acked.Load())
	}
}
