package mongodb

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Tests run against TASKHUB_TEST_MONGODB_URI when it is set, else against
// the FerretDB fixture binary TASKHUB_TEST_FERRETDB names (build it with
// `go build -o DIR/ferretdb .` in taskdb/mongodb/ferretdb). Without
// either they skip, except under CI=true, where they fail.
const (
	envURI      = "TASKHUB_TEST_MONGODB_URI"
	envFerretDB = "TASKHUB_TEST_FERRETDB"
)

// shared is the fixture server the tests of one run share.
var shared struct {
	once sync.Once
	uri  string
	err  error
	fix  *fixture
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.fix != nil {
		shared.fix.stop()
	}
	os.Exit(code)
}

// serverURI returns the URI of the test server, starting the shared
// fixture on first use, or skips (fails under CI=true) when there is none.
func serverURI(tb testing.TB) string {
	tb.Helper()
	if uri := os.Getenv(envURI); uri != "" {
		return uri
	}
	bin := fixtureBinary(tb)
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "taskhub-ferretdb-")
		if err != nil {
			shared.err = err
			return
		}
		shared.fix, shared.err = startFixture(bin, "127.0.0.1:0", dir)
		if shared.err == nil {
			shared.uri = shared.fix.uri
			shared.fix.removeDir = dir
		}
	})
	if shared.err != nil {
		tb.Fatalf("FerretDB fixture: %v", shared.err)
	}
	return shared.uri
}

// fixtureBinary returns the FerretDB fixture's path or skips (fails under
// CI=true) when it is not set.
func fixtureBinary(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv(envFerretDB)
	if bin != "" {
		return bin
	}
	msg := fmt.Sprintf("no MongoDB server: set %s, or %s to the FerretDB fixture (cd taskdb/mongodb/ferretdb && go build -o /tmp/ferretdb .)", envURI, envFerretDB)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// fixture is a running FerretDB fixture process.
type fixture struct {
	cmd       *exec.Cmd
	uri       string
	stderr    *strings.Builder
	removeDir string // removed by stop when set
}

// startFixture starts the fixture binary on addr with data in dir and
// waits until it prints its URI.
func startFixture(bin, addr, dir string) (*fixture, error) {
	cmd := exec.Command(bin, "-addr", addr, "-dir", dir)
	setPdeathsig(cmd) // the fixture dies with the test binary
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	f := &fixture{cmd: cmd, stderr: new(strings.Builder)}
	cmd.Stderr = &lockedWriter{w: f.stderr}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	select {
	case uri, ok := <-line:
		if ok {
			f.uri = uri
			return f, nil
		}
		f.stop()
		return nil, fmt.Errorf("%s exited: %s", bin, f.stderr)
	case <-time.After(30 * time.Second):
		f.stop()
		return nil, fmt.Errorf("%s printed no URI in 30s: %s", bin, f.stderr)
	}
}

// stop kills the fixture and waits for it to exit.
func (f *fixture) stop() {
	f.cmd.Process.Kill()
	f.cmd.Wait()
	if f.removeDir != "" {
		os.RemoveAll(f.removeDir)
	}
}

// lockedWriter serializes writes to a strings.Builder.
type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// freshDatabase returns a new database name and drops that database at
// cleanup, so each test starts empty even on a shared real server.
func freshDatabase(tb testing.TB, uri string) string {
	tb.Helper()
	name := "taskhub_test_" + strings.ToLower(rand.Text()[:10])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			return
		}
		defer c.Disconnect(ctx)
		if err := c.Database(name).Drop(ctx); err != nil && !errors.Is(err, context.Canceled) {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	return name
}

// open opens a DB on a fresh database of the test server and closes it at
// cleanup.
func open(tb testing.TB, opts Options) *DB {
	tb.Helper()
	if opts.URI == "" {
		opts.URI = serverURI(tb)
	}
	if opts.Database == "" {
		opts.Database = freshDatabase(tb, opts.URI)
	}
	db, err := Open(tb.Context(), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
