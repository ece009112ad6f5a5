package mongotest

import (
	"bufio"
	"context"
	"crypto/rand"
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

// The environment variables that name the test server.
const (
	EnvURI      = "TASKHUB_TEST_MONGODB_URI"
	EnvFerretDB = "TASKHUB_TEST_FERRETDB"
)

// URI returns the URI of a test server: EnvURI's, or that of a FerretDB
// fixture started with a temporary data directory and stopped at the end
// of the test. It skips the test (fails it under CI=true) when neither
// variable is set.
func URI(tb testing.TB) string {
	tb.Helper()
	if uri := os.Getenv(EnvURI); uri != "" {
		return uri
	}
	f, err := Start(FerretDB(tb), "127.0.0.1:0", tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.Stop)
	return f.URI
}

// FerretDB returns the path of the fixture binary, or skips the test
// (fails it under CI=true) when EnvFerretDB is not set.
func FerretDB(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv(EnvFerretDB)
	if bin != "" {
		return bin
	}
	msg := fmt.Sprintf("no MongoDB server: set %s, or %s to the FerretDB fixture (cd taskdb/mongodb/ferretdb && go build -o /tmp/ferretdb .)", EnvURI, EnvFerretDB)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// Fixture is a running FerretDB fixture process.
type Fixture struct {
	URI  string // mongodb://ADDR/
	Addr string // host:port it listens on
	cmd  *exec.Cmd
	errs *lockedBuffer
}

// Start starts the fixture binary listening on addr (port 0 picks one)
// with its data in dir, and waits until it accepts connections. Restarting
// it with the previous Addr and dir serves the same data.
func Start(bin, addr, dir string) (*Fixture, error) {
	cmd := exec.Command(bin, "-addr", addr, "-dir", dir)
	setPdeathsig(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	f := &Fixture{cmd: cmd, errs: new(lockedBuffer)}
	cmd.Stderr = f.errs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("FerretDB fixture: %w", err)
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
		if ok && strings.HasPrefix(uri, "mongodb://") {
			f.URI = uri
			f.Addr = strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
			return f, nil
		}
		f.Stop()
		return nil, fmt.Errorf("FerretDB fixture %s exited: %s", bin, f.errs)
	case <-time.After(30 * time.Second):
		f.Stop()
		return nil, fmt.Errorf("FerretDB fixture %s printed no URI in 30s: %s", bin, f.errs)
	}
}

// Stop kills the fixture (SIGKILL: a crash, as far as FerretDB knows) and
// waits for it to exit. It may be called more than once.
func (f *Fixture) Stop() {
	f.cmd.Process.Kill()
	f.cmd.Wait()
}

// Database returns a fresh database name on the server at uri and drops
// that database at the end of the test, so that each test starts empty
// even on a shared server.
func Database(tb testing.TB, uri string) string {
	tb.Helper()
	name := "taskhub_test_" + strings.ToLower(rand.Text()[:12])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			return
		}
		defer c.Disconnect(ctx)
		if err := c.Database(name).Drop(ctx); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	return name
}

// lockedBuffer collects the fixture's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
