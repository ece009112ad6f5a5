package integration_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A bad configuration file stops hubd before it listens: exit status 2,
// every bad field named on stderr, no connection files.
func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		extra string
		want  []string // on stderr
	}{
		{"invalid value", "db:\n  backend: mongo\n",
			[]string{`db.backend: "mongo" is not one of dict, nodb`}},
		{"unknown key", "db:\n  backendd: dict\n",
			[]string{"db.backendd"}},
		{"every bad field", "scheduler:\n  scheme: fastest\nsession:\n  packer: pickle\nbogus: 1\n",
			[]string{"scheduler.scheme", "fastest", "session.packer", "pickle", "bogus"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := writeConfig(t, dir, hubConfig(dir, c.extra))
			r := runCommand(t, bin.hubd, "--config", path)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\nstderr:\n%s", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, r.stderr)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "conn")); err == nil {
				t.Errorf("connection directory created for a bad configuration")
			}
		})
	}
}

// hubctl against a hub with no engine: reads of an empty history, errors
// from the hub as "ename: evalue" with exit 1, status and watch; then
// SIGTERM stops the hub cleanly.
func TestHubctlWithoutEngines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubd(t, writeConfig(t, dir, hubConfig(dir, "")), filepath.Join(dir, "conn"))
	// The start block: version, addresses, backend, client file.
	banner := regexp.MustCompile(`(?s)taskhub hubd \S+.*registration: +tcp://127\.0\.0\.1:\d+.*backend: +dict .*client file: +` +
		regexp.QuoteMeta(h.clientFile) + "\n")
	deadline := time.Now().Add(startTimeout)
	for !banner.MatchString(h.stdout.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("hubd stdout does not match %s:\n%s", banner, h.stdout)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if out := h.ok(t, "history"); out != "" {
		t.Errorf("history of a new hub = %q, want nothing", out)
	}
	if out := h.ok(t, "query", "{}", "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("query {} --format json = %q, want []", out)
	}
	if out := h.ok(t, "status"); !strings.HasPrefix(out, "engines: 0 ") {
		t.Errorf("status = %q, want engines: 0", out)
	}
	out := h.ok(t, "watch", "--count", "2", "--interval", "100ms")
	if n := strings.Count(out, "taskhub watch"); n != 2 {
		t.Errorf("watch --count 2 printed %d frames:\n%s", n, out)
	}
	for _, c := range []struct {
		args  []string
		ename string
	}{
		{[]string{"result", "no-such-id"}, "KeyError"},
		{[]string{"resubmit", "no-such-id"}, "KeyError"},
		{[]string{"query", `{"msg_id": {"$foo": 1}}`}, "InvalidQuery"},
		{[]string{"purge", "--engine", "7"}, "IndexError"},
	} {
		r := h.hubctl(t, c.args...)
		if r.code != 1 || !regexp.MustCompile(`^`+c.ename+`: \S`).MatchString(r.stderr) {
			t.Errorf("hubctl %q: exit %d, stderr %q; want exit 1 and %q", c.args, r.code, r.stderr, c.ename+": ...")
		}
	}
	h.terminate(t)
}

// An unreachable hub makes hubctl fail within its --timeout with a message
// naming the address: a closed port, and a port whose listener never
// speaks ZMTP.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHubd(t, writeConfig(t, dir, hubConfig(dir, "")), filepath.Join(dir, "conn"))
	cf, err := os.ReadFile(h.clientFile)
	if err != nil {
		t.Fatal(err)
	}
	h.terminate(t)
	var file map[string]any
	if err := json.Unmarshal(cf, &file); err != nil {
		t.Fatal(err)
	}

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() { // accept and hold connections, never answer
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	const timeout = time.Second
	for _, c := range []struct {
		name string
		port any // the registration port; nil keeps the stopped hub's
	}{
		{"stopped hub", nil},
		{"silent listener", silent.Addr().(*net.TCPAddr).Port},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.port != nil {
				file["registration"] = c.port
			}
			b, err := json.Marshal(file)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "client.json")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			addr := fmt.Sprintf("127.0.0.1:%v", file["registration"])
			for _, cmd := range [][]string{{"history"}, {"status"}, {"watch", "--count", "1"}} {
				r := runCommand(t, bin.hubctl, append([]string{"--file", path, "--timeout", timeout.String()}, cmd...)...)
				if r.code != 1 || !strings.Contains(r.stderr, addr) {
					t.Errorf("hubctl %q: exit %d, stderr %q; want exit 1 naming %s", cmd, r.code, r.stderr, addr)
				}
				if r.elapsed > timeout+5*time.Second {
					t.Errorf("hubctl %q took %v with --timeout %v", cmd, r.elapsed, timeout)
				}
			}
		})
	}
}

// Settings layer as documented: flag > TASKHUB_* environment > config file
// > default. hubd config print shows the result with the key redacted, and
// a hub started from those layers serves with them: the file's key in the
// 0600 connection files, the environment's backend over the file's.
func TestConfigLayers(t *testing.T) {
	t.Parallel()
	const key = "integration-secret-key"
	dir := t.TempDir()
	path := writeConfig(t, dir, hubConfig(dir, "session:\n  key: "+key+"\ndb:\n  backend: nodb\n"))
	env := []string{"TASKHUB_DB_BACKEND=sqlite"}
	for _, c := range []struct {
		env, flags []string
		want       string
	}{
		{nil, nil, `backend: "nodb"`},                      // the file beats the default (dict)
		{env, nil, `backend: "sqlite"`},                    // the environment beats the file
		{env, []string{"--db", "dict"}, `backend: "dict"`}, // a flag beats the environment
	} {
		args := append(append([]string{"--config", path}, c.flags...), "config", "print")
		r := runCommandEnv(t, c.env, bin.hubd, args...)
		if r.code != 0 || !strings.Contains(r.stdout, c.want) {
			t.Errorf("%q hubd %q: exit %d, want %s:\n%s%s", c.env, args, r.code, c.want, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, key) || !strings.Contains(r.stdout, `key: "<redacted>"`) {
			t.Errorf("config print does not redact the key:\n%s", r.stdout)
		}
	}

	h := startHubd(t, path, filepath.Join(dir, "conn"), "TASKHUB_DB_BACKEND=dict")
	for _, f := range []string{h.clientFile, h.engineFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cf struct{ Key string }
		if err := json.Unmarshal(b, &cf); err != nil || cf.Key != key {
			t.Errorf("%s: key %q (%v), want the config file's", f, cf.Key, err)
		}
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, st.Mode().Perm(), err)
		}
	}
	if r := h.hubctl(t, "history"); r.code != 0 {
		t.Errorf("history with db.backend: nodb in the file, TASKHUB_DB_BACKEND=dict: exit %d, stderr %q; want the dict backend's empty history", r.code, r.stderr)
	}
	// hubctl finds the client file through TASKHUB_CONNECTION_DIR too.
	r := runCommandEnv(t, []string{"TASKHUB_CONNECTION_DIR=" + filepath.Dir(h.clientFile), "TASKHUB_CLIENT_FILE="}, bin.hubctl, "status")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "engines: 0 ") {
		t.Errorf("TASKHUB_CONNECTION_DIR hubctl status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	h.terminate(t)
}

// The binaries' command lines: exit status 0 for --version and --help, 2
// for bad usage, with the reason on stderr.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		bin    string
		args   []string
		code   int
		stdout string // a substring of stdout
		stderr string // a substring of stderr
	}{
		{bin.hubd, []string{"--version"}, 0, "hubd ", ""},
		{bin.hubd, []string{"--help"}, 0, "config print", ""},
		{bin.hubd, []string{"--bogus"}, 2, "", "bogus"},
		{bin.hubd, []string{"serve"}, 2, "", `unknown command "serve"`},
		{bin.hubd, []string{"--config", "/nonexistent/hub.yaml"}, 2, "", "/nonexistent/hub.yaml"},
		{bin.hubctl, []string{"--help"}, 0, "watch", ""},
		{bin.hubctl, nil, 2, "", "no command"},
		{bin.hubctl, []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{bin.hubctl, []string{"query", "not json"}, 2, "", "query"},
		{bin.hubctl, []string{"query", "{}", "--format", "xml"}, 2, "", "xml"},
		{bin.hubctl, []string{"--file", "/nonexistent/client.json", "history"}, 1, "", "/nonexistent/client.json"},
	} {
		r := runCommand(t, c.bin, c.args...)
		if r.code != c.code || !strings.Contains(r.stdout, c.stdout) || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				filepath.Base(c.bin), c.args, r.code, r.stdout, r.stderr, c.code, c.stdout, c.stderr)
		}
	}
}
