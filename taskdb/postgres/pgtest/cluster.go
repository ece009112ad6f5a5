package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Cluster is a private PostgreSQL server that a test may stop and start.
type Cluster struct {
	DSN string
	bin string
	dir string
	as  []string // runs a command as the postgres user when we are root
}

// NewCluster initializes and starts a cluster on 127.0.0.1 in a temporary
// directory with the binaries of Bin; it is stopped and removed when the
// test ends. As root, the server runs as the postgres user.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin := Bin(tb)
	// Not tb.TempDir: the postgres user must reach the directory.
	dir, err := os.MkdirTemp("", "taskhub-pgtest")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	c := &Cluster{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		if err := os.Chown(dir, uid, -1); err != nil {
			tb.Fatal(err)
		}
		c.as = []string{"runuser", "-u", "postgres", "--"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	data := filepath.Join(dir, "data")
	c.run(tb, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\n", port, dir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	c.Start(tb)
	tb.Cleanup(func() {
		// Already stopped if the test failed while the server was down.
		argv := append(append([]string(nil), c.as...), filepath.Join(bin, "pg_ctl"), "-D", data, "stop", "-m", "immediate")
		exec.Command(argv[0], argv[1:]...).Run()
	})
	c.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return c
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start(tb testing.TB) {
	tb.Helper()
	c.ctl(tb, "start", "-w", "-l", filepath.Join(c.dir, "log"))
}

// Stop stops the server, disconnecting its clients.
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	c.ctl(tb, "stop", "-w", "-m", "fast")
}

func (c *Cluster) ctl(tb testing.TB, args ...string) {
	tb.Helper()
	c.run(tb, "pg_ctl", append([]string{"-D", filepath.Join(c.dir, "data")}, args...)...)
}

func (c *Cluster) run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	argv := append(append(append([]string(nil), c.as...), filepath.Join(c.bin, name)), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%v: %v\n%s", argv, err, out)
	}
}
