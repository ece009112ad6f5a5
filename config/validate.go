package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Accepted values of the enumerated settings.
var (
	SignatureSchemes = []string{"hmac-sha256", "hmac-sha1", "hmac-sha512", "hmac-md5"}
	Packers          = []string{"msgpack", "json"}
	SchedulerSchemes = []string{"leastload", "lru", "plainrandom", "twobin"}
	LogLevels        = []string{"debug", "info", "warn", "error"}
	LogFormats       = []string{"text", "json"}
	SQLiteSyncModes  = []string{"batch", "full"}
)

// maxBuffer bounds the settings that size a buffer the hub allocates at
// start (the database queues, the replay history): a slip such as extra
// zeros is then a configuration error, not an allocation that crashes hubd.
const maxBuffer = 1 << 24

var (
	tableName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	pgTableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

// Validate reports every invalid field of c at once, joined with
// errors.Join; each error starts with the field's key and says what is
// allowed, e.g. `db.backend: "mongo" is not one of dict, nodb`.
func (c Config) Validate() error {
	var v validator
	if c.Listen.Interface != "*" && net.ParseIP(c.Listen.Interface) == nil {
		v.fail("listen.interface", "%q is not an IP address or \"*\"", c.Listen.Interface)
	}
	v.ports(&c)
	v.nonEmpty("connection_dir", c.ConnectionDir, "set it, or set XDG_RUNTIME_DIR or HOME")
	v.nonEmpty("data_dir", c.DataDir, "set it, or set XDG_DATA_HOME or HOME")
	v.oneOf("session.signature_scheme", c.Session.SignatureScheme, SignatureSchemes)
	v.oneOf("session.packer", c.Session.Packer, Packers)
	v.between("session.replay_history", c.Session.ReplayHistory, 1, maxBuffer)
	v.oneOf("db.backend", c.DB.Backend, Backends)
	v.between("db.queue", c.DB.Queue, 1, maxBuffer)
	v.atLeast("db.dict.record_limit", c.DB.Dict.RecordLimit, 0)
	v.atLeast("db.dict.size_limit", int(c.DB.Dict.SizeLimit), 0)
	if f := c.DB.Dict.CullFraction; !(f > 0 && f <= 1) {
		v.fail("db.dict.cull_fraction", "%v is not in (0, 1]", f)
	}
	sq := c.DB.SQLite
	v.nonEmpty("db.sqlite.path", sq.Path, "set it, or data_dir")
	if !tableName.MatchString(sq.Table) || strings.HasPrefix(strings.ToLower(sq.Table), "sqlite_") {
		v.fail("db.sqlite.table", "%q is not a table name (letters, digits and _, at most 64, not starting with a digit or sqlite_)", sq.Table)
	}
	v.oneOf("db.sqlite.sync", sq.Sync, SQLiteSyncModes)
	v.between("db.sqlite.batch_size", sq.BatchSize, 1, maxBuffer)
	v.positive("db.sqlite.flush_interval", sq.FlushInterval)
	if sq.MaxAge < 0 {
		v.fail("db.sqlite.max_age", "%v is negative", sq.MaxAge)
	}
	v.atLeast("db.sqlite.max_records", sq.MaxRecords, 0)
	v.positive("db.sqlite.prune_interval", sq.PruneInterval)
	pg := c.DB.Postgres
	if c.DB.Backend == "postgres" {
		v.nonEmpty("db.postgres.dsn", pg.DSN, "set it to the server's connection string")
	}
	if !pgTableName.MatchString(pg.Table) {
		v.fail("db.postgres.table", "%q is not a table name (lower-case letters, digits and _, at most 63, not starting with a digit)", pg.Table)
	}
	v.between("db.postgres.batch_size", pg.BatchSize, 1, maxBuffer)
	v.positive("db.postgres.flush_interval", pg.FlushInterval)
	v.atLeast("db.postgres.max_pending", pg.MaxPending, 1)
	v.atLeast("db.postgres.max_pending_bytes", int(pg.MaxPendingBytes), 1)
	v.mongoDB(c.DB)
	v.oneOf("scheduler.scheme", c.Scheduler.Scheme, SchedulerSchemes)
	v.atLeast("scheduler.hwm", c.Scheduler.HWM, 0)
	v.positive("heartbeat.period", c.Heartbeat.Period)
	v.atLeast("heartbeat.max_misses", c.Heartbeat.MaxMisses, 1)
	if c.Engine.DeadTaskGrace < 0 {
		v.fail("engine.dead_task_grace", "%v is negative", c.Engine.DeadTaskGrace)
	}
	v.positive("engine.registration_timeout", c.Engine.RegistrationTimeout)
	v.atLeast("transport.max_frame_size", int(c.Transport.MaxFrameSize), 1)
	v.atLeast("transport.max_message_size", int(c.Transport.MaxMessageSize), 1)
	if c.Transport.MaxFrameSize > c.Transport.MaxMessageSize {
		v.fail("transport.max_frame_size", "%v exceeds transport.max_message_size %v", c.Transport.MaxFrameSize, c.Transport.MaxMessageSize)
	}
	v.positive("transport.handshake_timeout", c.Transport.HandshakeTimeout)
	v.positive("transport.write_timeout", c.Transport.WriteTimeout)
	v.atLeast("transport.max_send_queue", int(c.Transport.MaxSendQueue), 1)
	v.oneOf("log.level", c.Log.Level, LogLevels)
	v.oneOf("log.format", c.Log.Format, LogFormats)
	v.atLeast("task_memory", c.TaskMemory, 0)
	v.positive("shutdown_timeout", c.ShutdownTimeout)
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (v *validator) oneOf(key, val string, allowed []string) {
	if !slices.Contains(allowed, val) {
		v.fail(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
	}
}

func (v *validator) atLeast(key string, n, lo int) {
	if n < lo {
		v.fail(key, "%d is less than %d", n, lo)
	}
}

func (v *validator) between(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.fail(key, "%d is not in %d..%d", n, lo, hi)
	}
}

func (v *validator) positive(key string, d time.Duration) {
	if d <= 0 {
		v.fail(key, "%v is not a positive duration", d)
	}
}

func (v *validator) nonEmpty(key, val, hint string) {
	if val == "" {
		v.fail(key, "is empty and has no default (%s)", hint)
	}
}

// mongoDB checks the mongodb settings: the URI only when that backend is
// chosen, the names always (MongoDB's rules for database and collection
// names).
func (v *validator) mongoDB(db DB) {
	m := db.MongoDB
	if db.Backend == "mongodb" {
		if m.URI == "" {
			v.fail("db.mongodb.uri", "is empty; db.backend: mongodb needs a connection string such as mongodb://127.0.0.1:27017/")
		} else if !strings.HasPrefix(m.URI, "mongodb://") && !strings.HasPrefix(m.URI, "mongodb+srv://") {
			v.fail("db.mongodb.uri", "%q is not a mongodb:// or mongodb+srv:// URI", redactURI(m.URI))
		}
	}
	if m.Database == "" || len(m.Database) > 63 || strings.ContainsAny(m.Database, "/\\. \"$*<>:|?\x00") {
		v.fail("db.mongodb.database", "%q is not a database name (1 to 63 bytes, none of /\\. \"$*<>:|?)", m.Database)
	}
	if m.Collection == "" || strings.ContainsAny(m.Collection, "$\x00") || strings.HasPrefix(m.Collection, "system.") {
		v.fail("db.mongodb.collection", "%q is not a collection name (not empty, no $, not starting with system.)", m.Collection)
	}
	v.between("db.mongodb.batch_size", m.BatchSize, 1, maxBuffer)
	v.positive("db.mongodb.flush_interval", m.FlushInterval)
	v.atLeast("db.mongodb.max_pending", m.MaxPending, 1)
	v.atLeast("db.mongodb.max_pending_bytes", int(m.MaxPendingBytes), 1)
}

// ports checks that each port under listen is in 0..65535 and that no two
// sockets ask for the same non-zero port.
func (v *validator) ports(c *Config) {
	owner := map[int]string{}
	check := func(key string, port int) {
		switch {
		case port < 0 || port > 65535:
			v.fail(key, "%d is not a port in 0..65535 (0 picks a free port)", port)
		case port == 0:
		case owner[port] != "":
			v.fail(key, "port %d is already used by %s", port, owner[port])
		default:
			owner[port] = key
		}
	}
	for _, l := range leaves(c) {
		if !strings.HasPrefix(l.key, "listen.") {
			continue
		}
		if p, ok := l.val.Interface().(int); ok {
			check(l.key, p)
		}
	}
}
