package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/taskhub/taskhub/config"
	"github.com/taskhub/taskhub/hub"
	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/taskdb/mongodb"
	"github.com/taskhub/taskhub/taskdb/nodb"
	"github.com/taskhub/taskhub/taskdb/postgres"
	"github.com/taskhub/taskhub/taskdb/sqlitedb"
	"github.com/taskhub/taskhub/wire/transport"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build info.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore the default action: a second signal kills at once
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError marks a bad command line or configuration: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// exitCode reports err on stderr and returns the process exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "hubd:", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// flagKeys maps the dedicated flags to config keys.
var flagKeys = []struct{ name, key, usage string }{
	{"ip", "listen.interface", "interface to bind (IP address or *)"},
	{"db", "db.backend", "task database backend: " + strings.Join(config.Backends, ", ")},
	{"log-level", "log.level", "log level: " + strings.Join(config.LogLevels, ", ")},
	{"log-format", "log.format", "log format: " + strings.Join(config.LogFormats, ", ")},
	{"connection-dir", "connection_dir", "directory for the connection files"},
	{"packer", "session.packer", "message packer: " + strings.Join(config.Packers, ", ")},
	{"scheme", "scheduler.scheme", "task scheduler: " + strings.Join(config.SchedulerSchemes, ", ")},
}

// setFlag collects repeated --set key=value flags.
type setFlag map[string]string

func (s setFlag) String() string { return "" }
func (s setFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want key=value, e.g. db.dict.record_limit=10000")
	}
	s[k] = val
	return nil
}

// run is main without the process: tests call it. It returns nil on a
// clean exit, a *usageError for a bad command line or configuration, and
// any other error for a runtime failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hubd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "configuration `file` (.yaml, .yml, .toml or .json)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	dedicated := make([]*string, len(flagKeys))
	for i, f := range flagKeys {
		dedicated[i] = fs.String(f.name, "", f.usage+" ("+f.key+")")
	}
	sets := setFlag{}
	fs.Var(sets, "set", "set any configuration `key=value`, e.g. --set heartbeat.period=1s (repeatable)")
	usage := func() {
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, "Usage:\n  hubd [flags]               run the hub\n  hubd [flags] config print  print the effective configuration (key redacted)\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(stdout, "\nPrecedence: flags > TASKHUB_* environment > config file > defaults.\nExit status: 0 clean, 1 runtime failure, 2 bad configuration or usage.\n")
	}
	parse := func(args []string) error {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usagef("%v (see hubd --help)", err)
		}
		return nil
	}
	err := parse(args)
	rest := fs.Args()
	printConfig := false
	if err == nil && len(rest) > 0 {
		if len(rest) < 2 || rest[0] != "config" || rest[1] != "print" {
			return usagef("unknown command %q (see hubd --help)", strings.Join(rest, " "))
		}
		printConfig = true
		if err = parse(rest[2:]); err == nil && fs.NArg() > 0 {
			return usagef("unexpected arguments %q after config print", strings.Join(fs.Args(), " "))
		}
	}
	if errors.Is(err, flag.ErrHelp) {
		usage()
		return nil
	}
	if err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintln(stdout, "hubd", versionString())
		return nil
	}
	overrides := map[string]string(sets)
	fs.Visit(func(f *flag.Flag) {
		for i, fk := range flagKeys {
			if f.Name == fk.name {
				overrides[fk.key] = *dedicated[i]
			}
		}
	})
	cfg, err := config.Load(*configPath, os.LookupEnv, overrides)
	if err != nil {
		return &usageError{fmt.Errorf("bad configuration:\n%w", err)}
	}
	if printConfig {
		for _, name := range config.UnknownEnv(os.Environ()) {
			fmt.Fprintf(stderr, "hubd: ignoring unknown environment variable %s\n", name)
		}
		_, err := stdout.Write(cfg.YAML())
		return err
	}
	log := newLogger(cfg.Log, stderr)
	for _, name := range config.UnknownEnv(os.Environ()) {
		log.Warn("ignoring unknown environment variable", "name", name)
	}
	db, err := openDB(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, db, log, stdout)
}

// serve runs the hub on db until ctx ends or a client asks it to shut
// down, then closes db. A failed Close is a runtime failure: for a durable
// backend it is the final commit of queued records failing.
func serve(ctx context.Context, cfg config.Config, db taskdb.DB, log *slog.Logger, stdout io.Writer) (err error) {
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the task database (%s): %w", cfg.DB.Backend, cerr))
		}
	}()
	if err := os.MkdirAll(cfg.ConnectionDir, 0o700); err != nil {
		return fmt.Errorf("connection directory: %w", err)
	}
	h, err := hub.New(hubConfig(cfg, log), db, log.With("component", "hub"))
	if err != nil {
		return &usageError{err}
	}
	if err := h.Listen(); err != nil {
		return err
	}
	printBanner(stdout, cfg, h)
	clientFile, _ := h.ConnectionFiles()
	log.Info("hub started", "version", versionString(), "registration", h.ClientInfo().Endpoint(h.ClientInfo().Registration),
		"db_backend", cfg.DB.Backend, "client_file", clientFile)
	if err := h.Run(ctx); err != nil {
		return err
	}
	log.Info("hub stopped")
	return nil
}

// openDB builds the task database selected by db.backend. Adding a backend
// means adding a case here.
func openDB(ctx context.Context, c config.DB, log *slog.Logger) (taskdb.DB, error) {
	switch c.Backend {
	case "dict":
		return dictdb.New(dictdb.Options{
			RecordLimit:  c.Dict.RecordLimit,
			SizeLimit:    int64(c.Dict.SizeLimit),
			CullFraction: c.Dict.CullFraction,
			Logger:       log.With("component", "dictdb"),
		}), nil
	case "nodb":
		return nodb.New(), nil
	case "sqlite":
		s := c.SQLite
		if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
			return nil, fmt.Errorf("db.sqlite.path: %w", err)
		}
		db, err := sqlitedb.Open(ctx, sqlitedb.Options{
			Path: s.Path, Table: s.Table, Sync: s.Sync, BatchSize: s.BatchSize, FlushInterval: s.FlushInterval,
			MaxAge: s.MaxAge, MaxRecords: s.MaxRecords, PruneInterval: s.PruneInterval,
			Logger: log.With("component", "sqlitedb"),
		})
		if err != nil {
			return nil, fmt.Errorf("db.sqlite.path %s: %w", s.Path, err)
		}
		return db, nil
	case "postgres":
		p := c.Postgres
		db, err := postgres.Open(ctx, postgres.Options{
			DSN: p.DSN, Table: p.Table, BatchSize: p.BatchSize, FlushInterval: p.FlushInterval,
			MaxPending: p.MaxPending, MaxPendingBytes: int64(p.MaxPendingBytes),
			Logger: log.With("component", "postgres"),
		})
		if err != nil {
			return nil, fmt.Errorf("db.postgres (%s): %w", config.RedactDSN(p.DSN), err)
		}
		return db, nil
	case "mongodb":
		m := c.MongoDB
		db, err := mongodb.Open(ctx, mongodb.Options{
			URI: m.URI, Database: m.Database, Collection: m.Collection,
			BatchSize: m.BatchSize, FlushInterval: m.FlushInterval, MaxPending: m.MaxPending, MaxPendingBytes: int64(m.MaxPendingBytes),
			Logger: log.With("component", "mongodb"),
		})
		if err != nil {
			return nil, fmt.Errorf("db.mongodb (database %s, collection %s): %w", m.Database, m.Collection, err)
		}
		return db, nil
	}
	return nil, usagef("db.backend: %q is not one of %s", c.Backend, strings.Join(config.Backends, ", "))
}

// hubConfig maps the configuration to the hub's options.
func hubConfig(c config.Config, log *slog.Logger) hub.Config {
	hwm := c.Scheduler.HWM
	if hwm == 0 {
		hwm = -1 // unlimited, in hub.Config's terms
	}
	taskMemory := c.TaskMemory
	if taskMemory == 0 {
		taskMemory = -1 // unlimited, likewise
	}
	l := c.Listen
	return hub.Config{
		IP: l.Interface,
		Ports: hub.Ports{
			Registration:  l.Registration,
			ClientControl: l.Client.Control, EngineControl: l.Engine.Control,
			ClientMux: l.Client.Mux, EngineMux: l.Engine.Mux,
			ClientTask: l.Client.Task, EngineTask: l.Engine.Task,
			ClientIOPub: l.Client.IOPub, EngineIOPub: l.Engine.IOPub,
			ClientBroadcast: l.Client.Broadcast, EngineBroadcast: l.Engine.Broadcast,
			Notification: l.Client.Notification,
			HBPing:       l.Engine.HBPing,
			HBPong:       l.Engine.HBPong,
		},
		ConnectionDir:       c.ConnectionDir,
		Key:                 c.Session.Key,
		SignatureScheme:     c.Session.SignatureScheme,
		Packer:              c.Session.Packer,
		ReplayHistory:       c.Session.ReplayHistory,
		Scheme:              c.Scheduler.Scheme,
		HWM:                 hwm,
		HeartbeatPeriod:     c.Heartbeat.Period,
		HeartbeatMaxMisses:  c.Heartbeat.MaxMisses,
		DeadEngineGrace:     c.Engine.DeadTaskGrace,
		RegistrationTimeout: c.Engine.RegistrationTimeout,
		Transport: transport.Options{
			MaxFrameSize:     int64(c.Transport.MaxFrameSize),
			MaxMessageSize:   int64(c.Transport.MaxMessageSize),
			HandshakeTimeout: c.Transport.HandshakeTimeout,
			WriteTimeout:     c.Transport.WriteTimeout,
			MaxSendQueue:     int64(c.Transport.MaxSendQueue),
			Logger:           log.With("component", "transport"),
		},
		DBQueue:         c.DB.Queue,
		TaskMemory:      taskMemory,
		ShutdownTimeout: c.ShutdownTimeout,
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// printBanner writes the start block, in one piece: version, addresses,
// backend and connection files.
func printBanner(w io.Writer, cfg config.Config, h *hub.Hub) {
	ci, ei := h.ClientInfo(), h.EngineInfo()
	clientFile, engineFile := h.ConnectionFiles()
	backend := cfg.DB.Backend
	switch backend {
	case "dict":
		d := cfg.DB.Dict
		backend = fmt.Sprintf("dict (in memory; record_limit %d, size_limit %v, cull_fraction %v)", d.RecordLimit, d.SizeLimit, d.CullFraction)
	case "nodb":
		backend = "nodb (stores nothing; queries fail)"
	case "sqlite":
		backend = fmt.Sprintf("sqlite (%s, table %s, sync %s)", cfg.DB.SQLite.Path, cfg.DB.SQLite.Table, cfg.DB.SQLite.Sync)
	case "postgres":
		backend = fmt.Sprintf("postgres (%s, table %s)", config.RedactDSN(cfg.DB.Postgres.DSN), cfg.DB.Postgres.Table)
	case "mongodb":
		backend = fmt.Sprintf("mongodb (database %s, collection %s)", cfg.DB.MongoDB.Database, cfg.DB.MongoDB.Collection)
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "taskhub hubd %s\n", versionString())
	fmt.Fprintf(tw, "  registration:\t%s\n", ci.Endpoint(ci.Registration))
	fmt.Fprintf(tw, "  client ports:\tcontrol %d, mux %d, task %d (%s), iopub %d, notification %d, broadcast %d\n",
		ci.Control, ci.Mux, ci.Task, ci.TaskScheme, ci.IOPub, ci.Notification, ci.Broadcast)
	fmt.Fprintf(tw, "  engine ports:\tcontrol %d, mux %d, task %d, iopub %d, hb_ping %d, hb_pong %d, broadcast %v\n",
		ei.Control, ei.Mux, ei.Task, ei.IOPub, ei.HBPing, ei.HBPong, ei.Broadcast)
	fmt.Fprintf(tw, "  backend:\t%s\n", backend)
	fmt.Fprintf(tw, "  session:\t%s, %s packer\n", ci.SignatureScheme, cfg.Session.Packer)
	fmt.Fprintf(tw, "  client file:\t%s\n", clientFile)
	fmt.Fprintf(tw, "  engine file:\t%s\n", engineFile)
	tw.Flush()
	w.Write(b.Bytes()) // one write: the block is never interleaved with logs
}

// versionString is the -ldflags version, else the module version or VCS
// revision from the build info, with the Go version.
func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "" {
		v = bi.Main.Version
		if v == "" || v == "(devel)" {
			v = "devel"
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += "+" + s.Value[:12]
				}
			}
		}
	}
	return v + " (" + runtime.Version() + ")"
}
