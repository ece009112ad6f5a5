package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// envOf returns a lookup function over vars, standing in for os.LookupEnv.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

var home = envOf(map[string]string{"HOME": "/home/u"})

// resolvedDefault is Default with the directories Load derives from home.
func resolvedDefault() Config {
	c := Default()
	c.ConnectionDir = "/home/u/.taskhub/security"
	c.DataDir = "/home/u/.local/share/taskhub"
	c.DB.SQLite.Path = "/home/u/.local/share/taskhub/tasks.db"
	return c
}

func writeFile(tb testing.TB, name, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestDefaultsAreValid(t *testing.T) {
	c, err := Load("", home, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, resolvedDefault()) {
		t.Errorf("Load with no file:\n%s\nwant\n%s", c.YAML(), resolvedDefault().YAML())
	}
}

// The example file documents every key with its default: it must load, list
// every key, and agree with Default.
func TestExampleFile(t *testing.T) {
	path := filepath.Join("..", "hub.example.yaml")
	c, err := Load(path, home, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, resolvedDefault()) {
		t.Errorf("example values differ from the defaults:\nexample:\n%s\ndefault:\n%s", c.YAML(), resolvedDefault().YAML())
	}
	v, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := v.AllKeys()
	slices.Sort(got)
	want := Keys()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("example keys differ from Config keys:\nexample: %v\nconfig:  %v", got, want)
	}
}

// README.md documents every key with its environment variable.
func TestDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if row := "| `" + k + "` |"; !strings.Contains(string(doc), row) {
			t.Errorf("README.md has no row for %s", k)
		}
		if !strings.Contains(string(doc), "`"+EnvName(k)+"`") {
			t.Errorf("README.md does not name %s", EnvName(k))
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "hub.yaml", "db:\n  backend: nodb\nlog:\n  level: warn\nscheduler:\n  hwm: 7\n")
	for _, c := range []struct {
		name  string
		path  string
		env   map[string]string
		flags map[string]string
		want  [3]string // db.backend, log.level, scheduler.hwm
	}{
		{"default", "", nil, nil, [3]string{"dict", "info", "1"}},
		{"file", file, nil, nil, [3]string{"nodb", "warn", "7"}},
		{"env beats file", file, map[string]string{"TASKHUB_DB_BACKEND": "dict", "TASKHUB_SCHEDULER_HWM": "3"}, nil, [3]string{"dict", "warn", "3"}},
		{"flag beats env", file, map[string]string{"TASKHUB_DB_BACKEND": "dict", "TASKHUB_LOG_LEVEL": "debug"},
			map[string]string{"db.backend": "nodb", "log.level": "error"}, [3]string{"nodb", "error", "7"}},
		{"env without file", "", map[string]string{"TASKHUB_DB_BACKEND": "nodb"}, nil, [3]string{"nodb", "info", "1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/h"}
			for k, v := range c.env {
				env[k] = v
			}
			cfg, err := Load(c.path, envOf(env), c.flags)
			if err != nil {
				t.Fatal(err)
			}
			got := [3]string{cfg.DB.Backend, cfg.Log.Level, strings.TrimSpace(yamlValue(cfg.Scheduler.HWM))}
			if got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// The same settings in every file format give the same Config.
func TestFormats(t *testing.T) {
	want := resolvedDefault()
	want.Listen.Registration = 5000
	want.Listen.Engine.Broadcast = 5001
	want.DB.Dict.SizeLimit = 64 << 20
	want.DB.Dict.CullFraction = 0.25
	want.Heartbeat.Period = 1500 * time.Millisecond
	for name, content := range map[string]string{
		"hub.yaml": "listen:\n  registration: 5000\n  engine:\n    broadcast: 5001\ndb:\n  dict:\n    size_limit: 64MiB\n    cull_fraction: 0.25\nheartbeat:\n  period: 1.5s\n",
		"hub.yml":  "Listen: {Registration: 5000, engine: {broadcast: 5001}}\ndb: {dict: {size_limit: 67108864, cull_fraction: 0.25}}\nheartbeat: {period: 1500ms}\n",
		"hub.toml": "[listen]\nregistration = 5000\n[listen.engine]\nbroadcast = 5001\n[db.dict]\nsize_limit = \"64 MiB\"\ncull_fraction = 0.25\n[heartbeat]\nperiod = \"1.5s\"\n",
		"hub.json": `{"listen": {"registration": 5000, "engine": {"broadcast": 5001}}, "db": {"dict": {"size_limit": 67108864, "cull_fraction": 0.25}}, "heartbeat": {"period": "1.5s"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Load(writeFile(t, name, content), home, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%s\nwant\n%s", got.YAML(), want.YAML())
			}
		})
	}
}

// Every problem is reported at once, each naming its key.
func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name, file string // file name and content; "" for none
		env, flags map[string]string
		want       []string
	}{
		{name: "every bad value at once", file: "db:\n  backend: mongo\n  dict:\n    cull_fraction: 1.5\nscheduler:\n  scheme: fifo\n  hwm: -1\nlog:\n  level: verbose\n  format: xml\nsession:\n  packer: pickle\n  signature_scheme: hmac-sha3\n",
			want: []string{
				`db.backend: "mongo" is not one of dict, nodb, sqlite, postgres, mongodb`,
				`db.dict.cull_fraction: 1.5 is not in (0, 1]`,
				`scheduler.scheme: "fifo" is not one of leastload, lru, plainrandom, twobin`,
				`scheduler.hwm: -1 is less than 0`,
				`log.level: "verbose" is not one of debug, info, warn, error`,
				`log.format: "xml" is not one of text, json`,
				`session.packer: "pickle" is not one of msgpack, json`,
				`session.signature_scheme: "hmac-sha3" is not one of hmac-sha256, hmac-sha1, hmac-sha512, hmac-md5`,
			}},
		{name: "unknown keys", file: "db:\n  bakend: nodb\n  dict:\n    record_limt: 5\nlisten: 5\nfoo: {bar: 1}\n",
			want: []string{
				"db.bakend (in ", "unknown key (did you mean db.backend?)",
				"db.dict.record_limt (in ", "(did you mean db.dict.record_limit?)",
				"listen (in ", "is a section; want keys below it",
				"foo.bar (in ",
			}},
		{name: "types", file: "listen:\n  registration: abc\nheartbeat:\n  period: 3\n  max_misses: 2.5\ndb:\n  dict:\n    size_limit: 1 parsec\nshutdown_timeout: soon\nsession:\n  key: 5\n",
			want: []string{
				`listen.registration (from `, `"abc" is not an integer`,
				`heartbeat.period (from `, `3 is not a duration (write it as a string, e.g. "3s"`,
				`heartbeat.max_misses (from `, `2.5 is not an integer`,
				`db.dict.size_limit (from `, `"1 parsec" is not a size`,
				`shutdown_timeout (from `, `"soon" is not a duration`,
				`session.key (from `, `5 is not a string`,
			}},
		{name: "env and flags", env: map[string]string{"TASKHUB_DB_BACKEND": "mongo", "TASKHUB_LISTEN_REGISTRATION": "x"},
			flags: map[string]string{"log.levl": "debug", "scheduler.hwm": "many"},
			want: []string{
				`db.backend: "mongo" is not one of dict, nodb, sqlite, postgres, mongodb`,
				`listen.registration (from TASKHUB_LISTEN_REGISTRATION): "x" is not an integer`,
				`log.levl: unknown key (did you mean log.level?)`,
				`scheduler.hwm (from flag): "many" is not an integer`,
			}},
		{name: "ports", file: "listen:\n  interface: localhost\n  registration: 5000\n  client: {mux: 5000, task: 70000}\n  engine: {broadcast: 5000}\n",
			want: []string{
				`listen.interface: "localhost" is not an IP address or "*"`,
				`listen.client.mux: port 5000 is already used by listen.registration`,
				`listen.client.task: 70000 is not a port in 0..65535`,
				`listen.engine.broadcast: port 5000 is already used by listen.registration`,
			}},
		{name: "limits", file: "transport: {max_frame_size: 2MiB, max_message_size: 1MiB, write_timeout: 0s, handshake_timeout: -1s}\nheartbeat: {period: 0s, max_misses: 0}\nengine: {dead_task_grace: -1s}\n",
			want: []string{
				`transport.max_frame_size: 2MiB exceeds transport.max_message_size 1MiB`,
				`transport.write_timeout: 0s is not a positive duration`,
				`transport.handshake_timeout: -1s is not a positive duration`,
				`heartbeat.period: 0s is not a positive duration`,
				`heartbeat.max_misses: 0 is less than 1`,
				`engine.dead_task_grace: -1s is negative`,
			}},
		{name: "sqlite", file: "db:\n  sqlite: {table: 1x, sync: always, batch_size: 0, flush_interval: 0s, max_age: -1h, max_records: -1, prune_interval: 0s}\n",
			want: []string{
				`db.sqlite.table: "1x" is not a table name`,
				`db.sqlite.sync: "always" is not one of batch, full`,
				`db.sqlite.batch_size: 0 is not in 1..16777216`,
				`db.sqlite.flush_interval: 0s is not a positive duration`,
				`db.sqlite.max_age: -1h0m0s is negative`,
				`db.sqlite.max_records: -1 is less than 0`,
				`db.sqlite.prune_interval: 0s is not a positive duration`,
			}},
		{name: "postgres", file: "db:\n  backend: postgres\n  postgres: {table: Tasks, batch_size: 0, flush_interval: 0s, max_pending: 0, max_pending_bytes: 0}\n",
			want: []string{
				`db.postgres.dsn: is empty and has no default`,
				`db.postgres.table: "Tasks" is not a table name`,
				`db.postgres.batch_size: 0 is not in 1..16777216`,
				`db.postgres.flush_interval: 0s is not a positive duration`,
				`db.postgres.max_pending: 0 is less than 1`,
				`db.postgres.max_pending_bytes: 0 is less than 1`,
			}},
		{name: "mongodb", file: "db:\n  backend: mongodb\n  mongodb: {database: a.b, collection: system.x, batch_size: 0, flush_interval: 0s, max_pending: 0, max_pending_bytes: 0}\n",
			want: []string{
				`db.mongodb.uri: is empty; db.backend: mongodb needs a connection string`,
				`db.mongodb.database: "a.b" is not a database name`,
				`db.mongodb.collection: "system.x" is not a collection name`,
				`db.mongodb.batch_size: 0 is not in 1..16777216`,
				`db.mongodb.flush_interval: 0s is not a positive duration`,
				`db.mongodb.max_pending: 0 is less than 1`,
				`db.mongodb.max_pending_bytes: 0 is less than 1`,
			}},
		{name: "mongodb uri", file: "db:\n  backend: mongodb\n  mongodb: {uri: \"http://u:pw@h/\", collection: \"\"}\n",
			want: []string{
				`db.mongodb.uri: "http://u:<redacted>@h/" is not a mongodb:// or mongodb+srv:// URI`,
				`db.mongodb.collection: "" is not a collection name`,
			}},
		{name: "buffer sizes", file: "session: {replay_history: 0}\ndb: {queue: 4611686018427387904, sqlite: {batch_size: 16777217}}\n",
			want: []string{
				`session.replay_history: 0 is not in 1..16777216`,
				`db.queue: 4611686018427387904 is not in 1..16777216`,
				`db.sqlite.batch_size: 16777217 is not in 1..16777216`,
			}},
		{name: "bad yaml", file: "db: [\n", want: []string{"config file ", "hub.yaml"}},
		{name: "duplicate key", file: "db:\n  backend: dict\n  backend: nodb\n", want: []string{"config file ", "already defined"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := ""
			if c.file != "" {
				path = writeFile(t, "hub.yaml", c.file)
			}
			env := map[string]string{"HOME": "/h"}
			for k, v := range c.env {
				env[k] = v
			}
			_, err := Load(path, envOf(env), c.flags)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{filepath.Join(t.TempDir(), "missing.yaml"), "no such file"},
		{writeFile(t, "hub.ini", "x=1"), `unknown extension ".ini"`},
	} {
		if _, err := Load(c.path, home, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%s) = %v, want error containing %q", c.path, err, c.want)
		}
	}
}

func TestDirectories(t *testing.T) {
	for _, c := range []struct {
		env                map[string]string
		wantConn, wantData string
	}{
		{map[string]string{"HOME": "/h"}, "/h/.taskhub/security", "/h/.local/share/taskhub"},
		{map[string]string{"HOME": "/h", "XDG_RUNTIME_DIR": "/run/user/7", "XDG_DATA_HOME": "/d"}, "/run/user/7/taskhub", "/d/taskhub"},
		{map[string]string{"HOME": "/h", "XDG_RUNTIME_DIR": "relative"}, "/h/.taskhub/security", "/h/.local/share/taskhub"},
		{map[string]string{"HOME": "/h", "TASKHUB_CONNECTION_DIR": "/x"}, "/x", "/h/.local/share/taskhub"},
	} {
		cfg, err := Load("", envOf(c.env), nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ConnectionDir != c.wantConn || cfg.DataDir != c.wantData || cfg.DB.SQLite.Path != c.wantData+"/tasks.db" {
			t.Errorf("env %v: dirs %q, %q, %q; want %q, %q and tasks.db in it", c.env, cfg.ConnectionDir, cfg.DataDir, cfg.DB.SQLite.Path, c.wantConn, c.wantData)
		}
		if got := DefaultConnectionDir(envOf(c.env)); c.env["TASKHUB_CONNECTION_DIR"] == "" && got != c.wantConn {
			t.Errorf("DefaultConnectionDir = %q, want %q", got, c.wantConn)
		}
	}
	_, err := Load("", envOf(nil), nil)
	if err == nil || !strings.Contains(err.Error(), "connection_dir: is empty and has no default") {
		t.Errorf("no HOME: err = %v", err)
	}
}

// A key without a value (YAML null) keeps its default.
func TestNull(t *testing.T) {
	cfg, err := Load(writeFile(t, "hub.yaml", "session:\n  key:\n  packer: ~\n"), home, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, resolvedDefault()) {
		t.Errorf("got\n%s", cfg.YAML())
	}
}

// YAML output loads back to the same Config, except the redacted key.
func TestYAMLRoundTrip(t *testing.T) {
	want := resolvedDefault()
	want.Session.Key = "secret-key"
	want.DB.MongoDB.URI = "mongodb://u:secret-pw@db1:27017,db2:27017/?replicaSet=rs"
	want.Listen.Interface = "*"
	want.Listen.Engine.Broadcast = 7001
	want.DB.Dict.SizeLimit = 1500
	want.DB.Dict.CullFraction = 1
	want.ConnectionDir = `/tmp/a "quoted" dir`
	want.Heartbeat.Period = 90 * time.Second
	out := want.YAML()
	if strings.Contains(string(out), "secret-key") || strings.Contains(string(out), "secret-pw") {
		t.Fatalf("key or password not redacted:\n%s", out)
	}
	got, err := Load(writeFile(t, "print.yaml", string(out)), home, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want.Session.Key = Redacted
	want.DB.MongoDB.URI = "mongodb://u:" + Redacted + "@db1:27017,db2:27017/?replicaSet=rs"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\ngot\n%s\nwant\n%s", got.YAML(), want.YAML())
	}
}

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{"HOME=/h", "TASKHUB_DB_BACKEND=nodb", "TASKHUB_DB_BAKEND=nodb", "TASKHUB_CLIENT_FILE=/c.json",
		"TASKHUB_WHATEVER=1", "TASKHUB_LOG_LEVEL", "XTASKHUB_DB_BAKEND=1", "TASKHUB_TEST_POSTGRES_DSN=x"})
	want := []string{"TASKHUB_DB_BAKEND (did you mean TASKHUB_DB_BACKEND?)", "TASKHUB_WHATEVER"}
	if !slices.Equal(got, want) {
		t.Errorf("UnknownEnv = %q, want %q", got, want)
	}
}

func TestKeysAndEnvNames(t *testing.T) {
	keys := Keys()
	if len(keys) != 62 || keys[0] != "listen.interface" || keys[len(keys)-1] != "shutdown_timeout" {
		t.Errorf("Keys() = %d keys %v", len(keys), keys)
	}
	if got := EnvName("db.dict.record_limit"); got != "TASKHUB_DB_DICT_RECORD_LIMIT" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestByteSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ByteSize
		str  string
	}{
		{"0", 0, "0B"},
		{"1500", 1500, "1500B"},
		{"1GiB", 1 << 30, "1GiB"},
		{"1 gib", 1 << 30, "1GiB"},
		{"64MiB", 64 << 20, "64MiB"},
		{"1536KiB", 1536 << 10, "1536KiB"},
		{"2KB", 2000, "2000B"},
		{"1GB", 1e9, "1000000000B"},
		{"3TiB", 3 << 40, "3TiB"},
		{"7B", 7, "7B"},
	} {
		got, err := ParseByteSize(c.in)
		if err != nil || got != c.want || got.String() != c.str {
			t.Errorf("ParseByteSize(%q) = %d (%s), %v; want %d (%s)", c.in, got, got, err, c.want, c.str)
		}
	}
	for _, bad := range []string{"", "GiB", "-1", "1.5GiB", "1 parsec", "9999999TiB", "1e9"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) succeeded", bad)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"1GiB", "64 mib", "12", "9223372036854775807", "8EiB", "1KB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if m, err := ParseByteSize(n.String()); err != nil || m != n {
			t.Fatalf("%q → %d → %q → %d, %v", s, n, n.String(), m, err)
		}
	})
}

// FuzzLoad feeds arbitrary YAML to the loader: it may fail, never panic,
// and what loads must validate and survive a YAML round trip.
func FuzzLoad(f *testing.F) {
	ex, err := os.ReadFile(filepath.Join("..", "hub.example.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(ex))
	f.Add("db: {backend: nodb, dict: {size_limit: 5KiB}}\nlisten: {engine: {broadcast: 2}}\n")
	f.Add("listen: [1]\nfoo: &a {b: *a}\n")
	loadYAML := func(content string) (Config, error) {
		v, err := parse("f.yaml", "yaml", []byte(content))
		if err != nil {
			return Config{}, err
		}
		return load(v, "f.yaml", home, nil)
	}
	f.Fuzz(func(t *testing.T, content string) {
		cfg, err := loadYAML(content)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("load returned an invalid config: %v", err)
		}
		again, err := loadYAML(string(cfg.YAML()))
		if cfg.Session.Key != "" {
			cfg.Session.Key = Redacted
		}
		cfg.DB.MongoDB.URI = redactURI(cfg.DB.MongoDB.URI)
		if err != nil || !reflect.DeepEqual(again, cfg) {
			t.Fatalf("round trip: %v\n%s", err, cfg.YAML())
		}
	})
}

func TestRedactURI(t *testing.T) {
	for _, c := range []struct{ uri, want string }{
		{"", ""},
		{"mongodb://db1:27017,db2:27017/?replicaSet=rs", "mongodb://db1:27017,db2:27017/?replicaSet=rs"},
		{"mongodb://u:p%40ss@db1:27017,db2/x?authSource=admin", "mongodb://u:<redacted>@db1:27017,db2/x?authSource=admin"},
		{"mongodb+srv://u:secret@cluster.example.com/", "mongodb+srv://u:<redacted>@cluster.example.com/"},
		{"mongodb://u@db/", "mongodb://u@db/"},
		{"mongodb://u:<redacted>@db/", "mongodb://u:<redacted>@db/"},
	} {
		if got := redactURI(c.uri); got != c.want {
			t.Errorf("redactURI(%q) = %q, want %q", c.uri, got, c.want)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for _, c := range []struct{ dsn, want string }{
		{"", ""},
		{"postgres://u:secret@db:5432/x?sslmode=disable", "postgres://u:<redacted>@db:5432/x?sslmode=disable"},
		{"postgresql://u@db/x", "postgresql://u@db/x"},
		{"postgres://db/x?password=secret&user=u", "postgres://db/x?password=<redacted>&user=u"},
		{"host=db user=u password=secret dbname=x", "host=db user=u password=<redacted> dbname=x"},
		{"host=db password = 'se cr\\'et' dbname=x", "host=db password = <redacted> dbname=x"},
	} {
		if got := RedactDSN(c.dsn); got != c.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", c.dsn, got, c.want)
		}
	}
}
