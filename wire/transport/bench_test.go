//go:build unix

package transport

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	zt "github.com/go-zeromq/zmq4/transport"
	"github.com/taskhub/taskhub/wire/wiretest"
)

// taskMessage is a typical 6-frame task message as a DEALER sends it
// (~400 bytes of frames); the frames match testdata/ingest.py.
var taskMessage = zmq4.NewMsgFrom(
	[]byte("<IDS|MSG>"),
	[]byte(strings.Repeat("7", 64)),
	[]byte(`{"msg_id":"c0ffee00-1234-4abc-8def-0123456789ab","msg_type":"apply_request",`+
		`"username":"user","session":"0d9e1c1e-f00d4e1d8a2b3c4d5e6f7a8b","date":"2024-01-02T03:04:05.123456Z",`+
		`"version":"5.3"}`),
	[]byte("{}"),
	[]byte(`{"after":[],"follow":[],"timeout":null,"targets":[],"retries":0}`),
	[]byte(`{"code":"x = compute(42)","silent":false,"store_history":true}`),
)

// cpuTime returns the CPU time (user and system) of the process so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// counter counts the Read and Write calls on the net.Conns of a
// transport: the read and write syscalls, not counting retries after
// EAGAIN.
type counter struct{ reads, writes atomic.Int64 }

type countConn struct {
	net.Conn
	n *counter
}

func (c countConn) Read(p []byte) (int, error)  { c.n.reads.Add(1); return c.Conn.Read(p) }
func (c countConn) Write(p []byte) (int, error) { c.n.writes.Add(1); return c.Conn.Write(p) }

type countListener struct {
	net.Listener
	n *counter
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countConn{c, l.n}, nil
}

// countingTransport counts below zmq4's plain TCP transport (hardened nil)
// or below this package's conn.
type countingTransport struct {
	hardened *Transport
	n        counter
}

func (t *countingTransport) Dial(ctx context.Context, d zt.Dialer, addr string) (net.Conn, error) {
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cc := countConn{nc, &t.n}
	if t.hardened == nil {
		return cc, nil
	}
	return newConn(cc, &t.hardened.opts, false), nil
}

func (t *countingTransport) Listen(ctx context.Context, addr string) (net.Listener, error) {
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	cl := countListener{nl, &t.n}
	if t.hardened == nil {
		return cl, nil
	}
	return listen(cl, &t.hardened.opts), nil
}

func (t *countingTransport) Addr(ep string) (string, error) { return (&Transport{}).Addr(ep) }

// countingTransports registers "count-tcp" (zmq4 alone) and "count-zmtp"
// (hardened) once.
var countingTransports = sync.OnceValue(func() map[string]*countingTransport {
	h, err := New(Options{})
	if err != nil {
		panic(err)
	}
	ts := map[string]*countingTransport{"count-tcp": {}, "count-zmtp": {hardened: h}}
	for name, t := range ts {
		if err := zmq4.RegisterTransport(name, t); err != nil {
			panic(err)
		}
	}
	return ts
})

// BenchmarkIngest measures one-way ingest of task messages by a ROUTER
// from one DEALER, for each combination of plain zmq4 TCP and the
// hardened transport, and for libzmq through pyzmq.
func BenchmarkIngest(b *testing.B) {
	ts := countingTransports()
	for _, c := range []struct{ router, dealer string }{
		{"count-tcp", "count-tcp"},
		{"count-zmtp", "count-tcp"},
		{"count-zmtp", "count-zmtp"},
	} {
		name := "router=" + strings.TrimPrefix(c.router, "count-") + "/dealer=" + strings.TrimPrefix(c.dealer, "count-")
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := zmq4.NewRouter(ctx)
			defer r.Close()
			if err := r.Listen(c.router + "://127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
			d := zmq4.NewDealer(ctx)
			defer d.Close()
			if err := d.Dial(c.dealer + "://" + r.Addr().String()); err != nil {
				b.Fatal(err)
			}
			if err := d.Send(taskMessage); err != nil { // warm up
				b.Fatal(err)
			}
			if _, err := r.Recv(); err != nil {
				b.Fatal(err)
			}
			rt, dt := ts[c.router], ts[c.dealer]
			reads0, writes0, cpu0 := rt.n.reads.Load(), dt.n.writes.Load(), cpuTime(b)
			sent := make(chan error, 1)
			b.ResetTimer()
			go func() {
				for range b.N {
					if err := d.Send(taskMessage); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			for range b.N {
				if _, err := r.Recv(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := <-sent; err != nil {
				b.Fatal(err)
			}
			n := float64(b.N)
			b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(cpuTime(b)-cpu0)/n, "cpu-ns/msg")
			b.ReportMetric(float64(rt.n.reads.Load()-reads0)/n, "reads/msg")
			b.ReportMetric(float64(dt.n.writes.Load()-writes0)/n, "writes/msg")
		})
	}
	for _, router := range []string{"tcp", "zmtp"} {
		b.Run("router="+router+"/dealer=libzmq", func(b *testing.B) {
			py := wiretest.Python(b, "zmq")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := zmq4.NewRouter(ctx)
			defer r.Close()
			if err := r.Listen("count-" + router + "://127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, py, "testdata/ingest.py", "send", "tcp://"+r.Addr().String(), strconv.Itoa(b.N+1))
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer cmd.Wait()
			if _, err := r.Recv(); err != nil { // warm up
				b.Fatal(err)
			}
			rt := ts["count-"+router]
			reads0, cpu0 := rt.n.reads.Load(), cpuTime(b)
			b.ResetTimer()
			for range b.N {
				if _, err := r.Recv(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/msg")
			b.ReportMetric(float64(rt.n.reads.Load()-reads0)/float64(b.N), "reads/msg")
		})
	}
	b.Run("router=libzmq/dealer=libzmq", func(b *testing.B) {
		py := wiretest.Python(b, "zmq")
		out, err := exec.CommandContext(b.Context(), py, "testdata/ingest.py", strconv.Itoa(b.N)).CombinedOutput()
		if err != nil {
			b.Fatalf("ingest.py: %v\n%s", err, out)
		}
		var rate, cpu float64
		if _, err := fmt.Sscanf(string(out), "msgs/s %g cpu-ns/msg %g", &rate, &cpu); err != nil {
			b.Fatalf("ingest.py output %q: %v", out, err)
		}
		b.ReportMetric(rate, "msgs/s")
		b.ReportMetric(cpu, "cpu-ns/msg")
		b.ReportMetric(1e9/rate, "ns/op")
	})
}
