package config

import (
	"time"
)

// Config is the whole configuration of hubd. Every field has an explicit
// default (see [Default]); the `key` tags give the dotted key used in files,
// the environment and --set flags.
type Config struct {
	Listen Listen `key:"listen"`
	// ConnectionDir holds ipcontroller-client.json and
	// ipcontroller-engine.json. "" means $XDG_RUNTIME_DIR/taskhub, or
	// $HOME/.taskhub/security when XDG_RUNTIME_DIR is unset.
	ConnectionDir string `key:"connection_dir"`
	// DataDir holds the files of on-disk DB backends. "" means
	// $XDG_DATA_HOME/taskhub, or $HOME/.local/share/taskhub.
	DataDir         string        `key:"data_dir"`
	Session         Session       `key:"session"`
	DB              DB            `key:"db"`
	Scheduler       Scheduler     `key:"scheduler"`
	Heartbeat       Heartbeat     `key:"heartbeat"`
	Engine          Engine        `key:"engine"`
	Transport       Transport     `key:"transport"`
	Log             Log           `key:"log"`
	TaskMemory      int           `key:"task_memory"`      // finished tasks remembered; older ones are read from the DB; 0: unlimited
	ShutdownTimeout time.Duration `key:"shutdown_timeout"` // graceful shutdown bound
}

// Listen says where the hub binds its sockets. A port of 0 picks a free
// port; the chosen ports are written to the connection files.
type Listen struct {
	Interface    string      `key:"interface"` // IP address to bind, or "*" for all
	Registration int         `key:"registration"`
	Client       ClientPorts `key:"client"`
	Engine       EnginePorts `key:"engine"`
}

// ClientPorts are the ports of the client-facing sockets.
type ClientPorts struct {
	Control      int `key:"control"`
	Mux          int `key:"mux"`
	Task         int `key:"task"`
	IOPub        int `key:"iopub"`
	Notification int `key:"notification"`
	Broadcast    int `key:"broadcast"`
}

// EnginePorts are the ports of the engine-facing sockets.
type EnginePorts struct {
	Control   int `key:"control"`
	Mux       int `key:"mux"`
	Task      int `key:"task"`
	IOPub     int `key:"iopub"`
	HBPing    int `key:"hb_ping"`
	HBPong    int `key:"hb_pong"`
	Broadcast int `key:"broadcast"`
}

// Session configures message signing and packing.
type Session struct {
	// Key is the HMAC key. "" means: generate one at start; it is then
	// written only to the 0600 connection files.
	Key             string `key:"key"`
	SignatureScheme string `key:"signature_scheme"` // hmac-sha256, hmac-sha1, hmac-sha512, hmac-md5
	Packer          string `key:"packer"`           // msgpack or json
	ReplayHistory   int    `key:"replay_history"`   // signatures remembered against replays, 1..16777216
}

// DB selects the task database backend and holds each backend's settings.
type DB struct {
	Backend string `key:"backend"` // one of Backends
	// Queue bounds the database operations waiting to run; when it is
	// full, routing waits for the database (records are never dropped).
	// At most 16777216.
	Queue  int      `key:"queue"`
	Dict   DictDB   `key:"dict"`
	SQLite SQLiteDB `key:"sqlite"`
}

// Backends lists the values accepted for db.backend. Adding a backend
// means adding its name here and its settings struct to DB.
var Backends = []string{"dict", "nodb", "sqlite"}

// DictDB configures the in-memory backend. A limit of 0 means unlimited.
type DictDB struct {
	RecordLimit  int      `key:"record_limit"`  // records kept before culling
	SizeLimit    ByteSize `key:"size_limit"`    // bytes of buffers kept before culling
	CullFraction float64  `key:"cull_fraction"` // share of the limit removed per cull, in (0, 1]
}

// SQLiteDB configures the durable backend: one SQLite file kept across
// restarts. A limit or age of 0 means unlimited.
type SQLiteDB struct {
	// Path is the database file. "" means tasks.db in DataDir.
	Path          string        `key:"path"`
	Table         string        `key:"table"`          // letters, digits and _
	Sync          string        `key:"sync"`           // batch or full
	BatchSize     int           `key:"batch_size"`     // writes per commit, at most; 1..16777216
	FlushInterval time.Duration `key:"flush_interval"` // longest a write waits for its commit (sync: batch)
	MaxAge        time.Duration `key:"max_age"`        // completed records older than this are pruned
	MaxRecords    int           `key:"max_records"`    // beyond this many records the oldest completed are pruned
	PruneInterval time.Duration `key:"prune_interval"` // how often pruning runs
}

// Scheduler configures the task scheduler.
type Scheduler struct {
	Scheme string `key:"scheme"` // leastload, lru, plainrandom or twobin
	HWM    int    `key:"hwm"`    // outstanding tasks per engine; 0 means unlimited
}

// Heartbeat configures engine liveness checks: an engine that misses more
// than MaxMisses consecutive beats is unregistered.
type Heartbeat struct {
	Period    time.Duration `key:"period"`
	MaxMisses int           `key:"max_misses"`
}

// Engine configures the handling of engines that go away.
type Engine struct {
	// DeadTaskGrace is how long tasks of a dead engine wait for a late
	// result before they fail with EngineError.
	DeadTaskGrace time.Duration `key:"dead_task_grace"`
	// RegistrationTimeout drops a registering engine that never
	// heartbeats.
	RegistrationTimeout time.Duration `key:"registration_timeout"`
}

// Transport bounds what a peer may send and how long it may take.
type Transport struct {
	MaxMessageSize   ByteSize      `key:"max_message_size"`
	MaxFrameSize     ByteSize      `key:"max_frame_size"`
	HandshakeTimeout time.Duration `key:"handshake_timeout"`
	WriteTimeout     time.Duration `key:"write_timeout"`
	MaxSendQueue     ByteSize      `key:"max_send_queue"` // bytes queued to one peer at which messages to it are dropped
}

// Log configures the daemon's log output on stderr.
type Log struct {
	Level  string `key:"level"`  // debug, info, warn or error
	Format string `key:"format"` // text or json
}

// Default returns the default configuration. ConnectionDir, DataDir and
// DB.SQLite.Path are "" here; [Load] resolves them from the environment.
func Default() Config {
	return Config{
		Listen: Listen{Interface: "127.0.0.1"},
		Session: Session{
			SignatureScheme: "hmac-sha256",
			Packer:          "msgpack",
			ReplayHistory:   65536,
		},
		DB: DB{
			Backend: "dict",
			Queue:   65536,
			Dict:    DictDB{RecordLimit: 1024, SizeLimit: 1 << 30, CullFraction: 0.1},
			SQLite: SQLiteDB{Table: "tasks", Sync: "batch", BatchSize: 4096, FlushInterval: 50 * time.Millisecond,
				PruneInterval: time.Minute},
		},
		Scheduler: Scheduler{Scheme: "leastload", HWM: 1},
		Heartbeat: Heartbeat{Period: 3 * time.Second, MaxMisses: 10},
		Engine:    Engine{DeadTaskGrace: 5 * time.Second, RegistrationTimeout: 30 * time.Second},
		Transport: Transport{MaxMessageSize: 256 << 20, MaxFrameSize: 64 << 20, HandshakeTimeout: 5 * time.Second,
			WriteTimeout: 10 * time.Second, MaxSendQueue: 64 << 20},
		Log:             Log{Level: "info", Format: "text"},
		TaskMemory:      100_000,
		ShutdownTimeout: 10 * time.Second,
	}
}
