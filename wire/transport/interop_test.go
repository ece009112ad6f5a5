package transport

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/taskhub/taskhub/wire/wiretest"
)

// TestPyzmqDealer: a libzmq DEALER exchanges multi-frame messages (empty,
// short, long and 256 KB frames) with a Go ROUTER on the transport.
func TestPyzmqDealer(t *testing.T) {
	py := wiretest.Python(t, "zmq")
	r := startRouter(t, Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "testdata/pyzmq_peer.py", "dealer", "tcp://"+r.addr).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("pyzmq dealer: %v\n%s", err, out)
	}
}

// TestPyzmqSub: a libzmq SUB subscribes to a Go PUB on the transport (the
// hub's notification and IOPub sockets) and receives its publications.
func TestPyzmqSub(t *testing.T) {
	py := wiretest.Python(t, "zmq")
	scheme, err := Register(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub := zmq4.NewPub(ctx)
	defer pub.Close()
	if err := pub.Listen(scheme + "://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = exec.CommandContext(ctx, py, "testdata/pyzmq_peer.py", "sub", "tcp://"+pub.Addr().String()).CombinedOutput()
		done <- err
	}()
	// A subscriber misses what is published before its subscription
	// arrives, so publish until it has had enough.
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil || strings.TrimSpace(string(out)) != "ok" {
				t.Fatalf("pyzmq sub: %v\n%s", err, out)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
		for _, topic := range []string{"other", "topic.x"} {
			if err := pub.Send(zmq4.NewMsgFrom([]byte(topic), []byte(strconv.Itoa(i)))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPyzmqRouter: a Go DEALER dials a libzmq ROUTER through the transport.
func TestPyzmqRouter(t *testing.T) {
	py := wiretest.Python(t, "zmq")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/pyzmq_peer.py", "router")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cmd.Wait(); err != nil {
			t.Errorf("pyzmq router: %v\n%s", err, &stderr)
		}
	}()
	port, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("pyzmq router port: %v\n%s", err, &stderr)
	}
	scheme, err := Register(Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := zmq4.NewDealer(ctx)
	defer d.Close()
	if err := d.Dial(scheme + "://127.0.0.1:" + strings.TrimSpace(port)); err != nil {
		t.Fatal(err)
	}
	for _, m := range [][]string{
		{"one"},
		{"", ""},
		{strings.Repeat("a", 255), strings.Repeat("b", 256), ""},
		{"<IDS|MSG>", "sig", "{}", "{}", "{}", "{}", strings.Repeat("x", 100_000)},
		{strings.Repeat("\x00\xff", 128_000)},
	} {
		frames := make([][]byte, len(m))
		for i, f := range m {
			frames[i] = []byte(f)
		}
		if err := d.Send(zmq4.NewMsgFrom(frames...)); err != nil {
			t.Fatal(err)
		}
		got, err := d.Recv()
		if err != nil {
			t.Fatal(err)
		}
		want := append([][]byte{[]byte("re")}, frames...)
		if len(got.Frames) != len(want) {
			t.Fatalf("echo has %d frames, want %d", len(got.Frames), len(want))
		}
		for i := range want {
			if !bytes.Equal(got.Frames[i], want[i]) {
				t.Fatalf("echo frame %d: %.20q, want %.20q", i, got.Frames[i], want[i])
			}
		}
	}
	if err := d.Send(zmq4.NewMsgFrom([]byte("quit"))); err != nil {
		t.Fatal(err)
	}
}
