package connfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// File names of the two connection files inside the connection directory,
// as ipyparallel names them for a cluster without a cluster id.
const (
	ClientFile = "ipcontroller-client.json"
	EngineFile = "ipcontroller-engine.json"
)

// Client is the content of the client connection file. Ports are TCP ports
// on Interface.
type Client struct {
	SSH             string  `json:"ssh"`
	Interface       string  `json:"interface"` // "tcp://127.0.0.1"
	Registration    int     `json:"registration"`
	Control         int     `json:"control"`
	Mux             int     `json:"mux"`
	Task            int     `json:"task"`
	TaskScheme      string  `json:"task_scheme"` // "leastload", ...
	IOPub           int     `json:"iopub"`
	Notification    int     `json:"notification"`
	Broadcast       int     `json:"broadcast"`
	Key             string  `json:"key"`             // HMAC key; "" means unsigned
	CurveServerKey  *string `json:"curve_serverkey"` // always null: zmq4 has no CURVE
	Location        string  `json:"location"`        // the controller's hostname
	Pack            string  `json:"pack"`            // "json" or "msgpack.packb"
	Unpack          string  `json:"unpack"`          // "json" or "msgpack.unpackb"
	SignatureScheme string  `json:"signature_scheme"`
}

// Engine is the content of the engine connection file. Its ports differ from
// the client file's, except Registration. Broadcast lists the ports of the
// leaf broadcast schedulers; an engine connects to Broadcast[id%len].
type Engine struct {
	SSH             string  `json:"ssh"`
	Interface       string  `json:"interface"`
	Registration    int     `json:"registration"`
	Control         int     `json:"control"`
	Mux             int     `json:"mux"`
	Task            int     `json:"task"`
	IOPub           int     `json:"iopub"`
	HBPing          int     `json:"hb_ping"`
	HBPong          int     `json:"hb_pong"`
	Broadcast       []int   `json:"broadcast"`
	Key             string  `json:"key"`
	CurveServerKey  *string `json:"curve_serverkey"`
	Location        string  `json:"location"`
	Pack            string  `json:"pack"`
	Unpack          string  `json:"unpack"`
	SignatureScheme string  `json:"signature_scheme"`
}

// Endpoint returns the ZeroMQ address of port on the client file's
// interface, e.g. "tcp://127.0.0.1:5555". A wildcard interface ("*" or
// "0.0.0.0") is replaced by 127.0.0.1, as ipyparallel clients do.
func (c Client) Endpoint(port int) string { return endpoint(c.Interface, port) }

// Endpoint is [Client.Endpoint] for the engine file.
func (e Engine) Endpoint(port int) string { return endpoint(e.Interface, port) }

func endpoint(iface string, port int) string {
	proto, host, ok := strings.Cut(iface, "://")
	if !ok {
		proto, host = "tcp", iface
	}
	if host == "*" || host == "0.0.0.0" || host == "" {
		host = "127.0.0.1"
	}
	return proto + "://" + host + ":" + strconv.Itoa(port)
}

// Write stores v (a Client or an Engine) as indented JSON at path. The file
// is created with mode 0600 under a temporary name in the same directory and
// renamed over path, so it is never readable by others, not even briefly,
// and readers never see a partial file. The directory must exist.
func Write(path string, v any) error {
	switch v.(type) {
	case Client, *Client, Engine, *Engine:
	default:
		return fmt.Errorf("connfile: write %s: unsupported type %T", path, v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("connfile: write %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*") // mode 0600
	if err != nil {
		return fmt.Errorf("connfile: write %s: %w", path, err)
	}
	tmp := f.Name()
	if err := writeSync(f, buf.Bytes()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("connfile: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("connfile: write %s: %w", path, err)
	}
	return nil
}

func writeSync(f *os.File, b []byte) error {
	_, err := f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Keys that ipyparallel clients and engines read unconditionally; a file
// without one of them cannot be used. ssh, location and curve_serverkey are
// optional, as they are for ipyparallel.
var (
	clientRequired = []string{"interface", "registration", "control", "mux", "task", "task_scheme",
		"iopub", "notification", "broadcast", "key", "pack", "unpack", "signature_scheme"}
	engineRequired = []string{"interface", "registration", "control", "mux", "task",
		"iopub", "hb_ping", "hb_pong", "broadcast", "key", "pack", "unpack", "signature_scheme"}
)

// ReadClient reads a client connection file. It fails with an error naming
// the path if the file is missing (wrapping [fs.ErrNotExist]), is not a JSON
// object, lacks a required key, has a value of the wrong type, or names a
// port outside 1..65535.
func ReadClient(path string) (Client, error) {
	var c Client
	err := read(path, &c, clientRequired)
	if err == nil {
		err = checkPorts(map[string]int{"registration": c.Registration, "control": c.Control,
			"mux": c.Mux, "task": c.Task, "iopub": c.IOPub, "notification": c.Notification,
			"broadcast": c.Broadcast})
	}
	if err != nil {
		return Client{}, fmt.Errorf("connfile: %s: %w", path, err)
	}
	return c, nil
}

// ReadEngine reads an engine connection file, with the checks of
// [ReadClient]. Broadcast must list at least one port.
func ReadEngine(path string) (Engine, error) {
	var e Engine
	err := read(path, &e, engineRequired)
	if err == nil {
		ports := map[string]int{"registration": e.Registration, "control": e.Control,
			"mux": e.Mux, "task": e.Task, "iopub": e.IOPub, "hb_ping": e.HBPing, "hb_pong": e.HBPong}
		if len(e.Broadcast) == 0 {
			err = errors.New("broadcast: no ports")
		}
		for i, p := range e.Broadcast {
			ports["broadcast["+strconv.Itoa(i)+"]"] = p
		}
		err = errors.Join(err, checkPorts(ports))
	}
	if err != nil {
		return Engine{}, fmt.Errorf("connfile: %s: %w", path, err)
	}
	return e, nil
}

func read(path string, v any, required []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no connection file (is the hub running?): %w", fs.ErrNotExist)
		}
		return err
	}
	return decode(b, v, required)
}

// decode parses b into v after checking that every required key is present.
func decode(b []byte, v any, required []string) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	var missing []string
	for _, k := range required {
		if _, ok := keys[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing keys: %s", strings.Join(missing, ", "))
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: JSON %s where %s was expected", te.Field, te.Value, te.Type)
		}
		return err
	}
	return nil
}

func checkPorts(ports map[string]int) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(ports)) {
		if p := ports[name]; p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s: port %d is not in 1..65535", name, p))
		}
	}
	return errors.Join(errs...)
}

// Packer names as they appear in the pack and unpack keys. ipyparallel
// writes the import path of the function; "json" is jupyter_client's
// default packer.
var packers = []struct{ name, pack, unpack string }{
	{"json", "json", "json"},
	{"msgpack", "msgpack.packb", "msgpack.unpackb"},
}

// PackNames returns the pack and unpack values for packer "json" or
// "msgpack".
func PackNames(packer string) (pack, unpack string, err error) {
	for _, p := range packers {
		if p.name == packer {
			return p.pack, p.unpack, nil
		}
	}
	return "", "", fmt.Errorf("connfile: unknown packer %q (want json or msgpack)", packer)
}

// Packer returns "json" or "msgpack" for the file's pack and unpack values.
// It fails for any other pair, such as ipyparallel's "pickle".
func (c Client) Packer() (string, error) { return packerOf(c.Pack, c.Unpack) }

// Packer is [Client.Packer] for the engine file.
func (e Engine) Packer() (string, error) { return packerOf(e.Pack, e.Unpack) }

func packerOf(pack, unpack string) (string, error) {
	for _, p := range packers {
		if p.pack == pack && p.unpack == unpack {
			return p.name, nil
		}
	}
	return "", fmt.Errorf("connfile: unsupported packer pack=%q unpack=%q (want json or msgpack.packb/msgpack.unpackb)", pack, unpack)
}
