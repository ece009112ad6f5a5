package connfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The files in testdata were written by a real ipyparallel 7.1 controller
// (python3 -m ipyparallel.controller --ip=127.0.0.1).
func TestReferenceFilesRoundTrip(t *testing.T) {
	for _, c := range []struct {
		file string
		read func(string) (any, error)
	}{
		{"python-client.json", func(p string) (any, error) { return ReadClient(p) }},
		{"python-engine.json", func(p string) (any, error) { return ReadEngine(p) }},
	} {
		t.Run(c.file, func(t *testing.T) {
			ref := filepath.Join("testdata", c.file)
			v, err := c.read(ref)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), c.file)
			if err := Write(out, v); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(ref)
			got, _ := os.ReadFile(out)
			if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
				t.Errorf("Write differs from ipyparallel's file:\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestReadClientValues(t *testing.T) {
	c, err := ReadClient("testdata/python-client.json")
	if err != nil {
		t.Fatal(err)
	}
	want := Client{Interface: "tcp://127.0.0.1", Registration: 51535, Control: 45239, Mux: 33557,
		Task: 57985, TaskScheme: "leastload", IOPub: 40835, Notification: 35629, Broadcast: 33027,
		Key: "0809a68d-7acc4c1f8793cf4bc0e962c2", Location: "vm", Pack: "json", Unpack: "json",
		SignatureScheme: "hmac-sha256"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if got := c.Endpoint(c.Registration); got != "tcp://127.0.0.1:51535" {
		t.Errorf("Endpoint = %q", got)
	}
}

func TestEndpoint(t *testing.T) {
	for _, c := range []struct{ iface, want string }{
		{"tcp://127.0.0.1", "tcp://127.0.0.1:5"},
		{"tcp://*", "tcp://127.0.0.1:5"},
		{"tcp://0.0.0.0", "tcp://127.0.0.1:5"},
		{"tcp://10.1.2.3", "tcp://10.1.2.3:5"},
		{"10.1.2.3", "tcp://10.1.2.3:5"},
	} {
		if got := (Client{Interface: c.iface}).Endpoint(5); got != c.want {
			t.Errorf("Endpoint(%q) = %q, want %q", c.iface, got, c.want)
		}
		if got := (Engine{Interface: c.iface}).Endpoint(5); got != c.want {
			t.Errorf("Engine.Endpoint(%q) = %q, want %q", c.iface, got, c.want)
		}
	}
}

func TestWriteMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ClientFile)
	// An existing world-readable file is replaced, not rewritten in place.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, Client{Registration: 1}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "x.json"), map[string]int{}); err == nil {
		t.Error("Write(map) succeeded, want unsupported type")
	}
	if err := Write(filepath.Join(dir, "missing", "x.json"), Client{}); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}

func TestReadErrors(t *testing.T) {
	full, _ := os.ReadFile("testdata/python-client.json")
	without := func(key string) string {
		var lines []string
		for _, l := range strings.Split(string(full), "\n") {
			if !strings.Contains(l, `"`+key+`"`) {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	for _, c := range []struct {
		name, content, want string
	}{
		{"not json", "{", "not a JSON object"},
		{"array", "[]", "not a JSON object"},
		{"missing key", without("key"), "missing keys: key"},
		{"empty object", "{}", "missing keys: interface, registration"},
		{"bad type", strings.Replace(string(full), `"mux": 33557`, `"mux": "x"`, 1), "mux: JSON string where int was expected"},
		{"bad port", strings.Replace(string(full), `"mux": 33557`, `"mux": 0`, 1), "mux: port 0 is not in 1..65535"},
		{"big port", strings.Replace(string(full), `"task": 57985`, `"task": 70000`, 1), "task: port 70000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ClientFile)
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ReadClient(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want one naming %s and containing %q", err, path, c.want)
			}
		})
	}
	_, err := ReadClient(filepath.Join(t.TempDir(), ClientFile))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	path := filepath.Join(t.TempDir(), EngineFile)
	os.WriteFile(path, []byte(strings.Replace(string(mustRead(t, "testdata/python-engine.json")), "60457,\n    53017", "", 1)), 0o600)
	if _, err := ReadEngine(path); err == nil || !strings.Contains(err.Error(), "broadcast: no ports") {
		t.Errorf("empty broadcast: err = %v", err)
	}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestPacker(t *testing.T) {
	for _, name := range []string{"json", "msgpack"} {
		pack, unpack, err := PackNames(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Client{Pack: pack, Unpack: unpack}.Packer()
		if err != nil || got != name {
			t.Errorf("Packer(%q, %q) = %q, %v; want %q", pack, unpack, got, err, name)
		}
	}
	if _, _, err := PackNames("pickle"); err == nil {
		t.Error("PackNames(pickle) succeeded")
	}
	if _, err := (Engine{Pack: "json", Unpack: "msgpack.unpackb"}).Packer(); err == nil {
		t.Error("mixed pack/unpack accepted")
	}
}

// FuzzDecode checks that no input panics the decoder and that what decodes
// survives Write and ReadClient unchanged.
func FuzzDecode(f *testing.F) {
	f.Add(mustRead(f, "testdata/python-client.json"))
	f.Add([]byte(`{"registration": 1e3, "key": null}`))
	f.Add([]byte(`{"interface": "tcp://*", "broadcast": [1,2]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Client
		if err := decode(b, &c, clientRequired); err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), ClientFile)
		if err := Write(path, c); err != nil {
			t.Fatal(err)
		}
		var c2 Client
		if err := decode(mustRead(t, path), &c2, clientRequired); err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip: %v\n%#v\n%#v", err, c, c2)
		}
	})
}
