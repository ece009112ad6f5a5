package hub

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/taskhub/taskhub/wire/transport"
)

// Defaults applied to zero Config fields.
const (
	DefaultIP                  = "127.0.0.1"
	DefaultHWM                 = 1
	DefaultHeartbeatPeriod     = 3 * time.Second
	DefaultHeartbeatMaxMisses  = 10
	DefaultDeadEngineGrace     = 5 * time.Second
	DefaultRegistrationTimeout = 30 * time.Second
	DefaultDBQueue             = 1 << 16
	DefaultTaskMemory          = 100_000
	DefaultShutdownTimeout     = 5 * time.Second
)

// Ports are the TCP ports the hub binds. 0 picks a free port. The client
// and engine sides of each channel are distinct sockets, as in ipyparallel;
// Registration serves both clients (queries) and engines.
type Ports struct {
	Registration int

	ClientMux, EngineMux             int
	ClientControl, EngineControl     int
	ClientTask, EngineTask           int
	ClientIOPub, EngineIOPub         int
	ClientBroadcast, EngineBroadcast int

	Notification int
	HBPing       int
	HBPong       int
}

// Config configures a Hub. The zero value is a working local hub.
type Config struct {
	// IP is the interface the sockets bind; default DefaultIP.
	IP string
	// Ports are the ports to bind; zeros pick free ports.
	Ports Ports
	// ConnectionDir receives ipcontroller-client.json and
	// ipcontroller-engine.json (mode 0600), removed on clean shutdown.
	// Empty: no files are written.
	ConnectionDir string
	// Location is the connection files' "location"; default the hostname.
	Location string

	// Key signs every message (HMAC). Empty: a random key is generated.
	// Unsigned operation needs Unsigned.
	Key string
	// Unsigned runs without a key: nothing is signed or checked.
	Unsigned bool
	// SignatureScheme is "hmac-sha256" (default), "hmac-sha1",
	// "hmac-sha512" or "hmac-md5".
	SignatureScheme string
	// Packer is "json" or "msgpack" (wire's default when empty).
	Packer string
	// ReplayHistory is how many verified signatures are remembered to
	// drop replayed messages (0: wire.DefaultReplayHistory).
	ReplayHistory int

	// Scheme is the load-balancing scheme: leastload (default), lru,
	// plainrandom or twobin.
	Scheme string
	// HWM is the maximum number of outstanding load-balanced tasks per
	// engine. 0 means DefaultHWM; a negative value means no limit (what
	// ipyparallel spells hwm=0).
	HWM int

	// HeartbeatPeriod is the ping period; default 3 s.
	HeartbeatPeriod time.Duration
	// HeartbeatMaxMisses is how many consecutive beats an engine may miss
	// before it is unregistered; default 10.
	HeartbeatMaxMisses int
	// DeadEngineGrace is how long after an engine leaves its unfinished
	// tasks get EngineError results (a real result may still land in the
	// meantime); default 5 s.
	DeadEngineGrace time.Duration
	// RegistrationTimeout drops a registration whose engine never
	// heartbeats; default 30 s.
	RegistrationTimeout time.Duration

	// Transport configures the hardened transport every socket listens
	// through (frame and message limits, handshake and write timeouts).
	Transport transport.Options

	// TaskMemory is how many finished tasks the hub remembers (their
	// outcome and engine, under 200 bytes each), for dependencies,
	// status-only result requests and queue status; the oldest is
	// forgotten first, and the hub then asks the task database. 0 means
	// DefaultTaskMemory; a negative value means no limit.
	TaskMemory int

	// DBQueue bounds the queue of pending task-database operations. When
	// it is full, routing waits for the database (records are never
	// dropped). Default 65536.
	DBQueue int
	// ShutdownTimeout bounds the shutdown: draining in-flight results,
	// flushing the database queue and closing sockets. Default 5 s.
	ShutdownTimeout time.Duration
}

// withDefaults returns cfg with defaults filled in, or every invalid
// field's error joined.
func (cfg Config) withDefaults() (Config, error) {
	var errs []error
	if cfg.IP == "" {
		cfg.IP = DefaultIP
	}
	if net.ParseIP(cfg.IP) == nil && cfg.IP != "*" {
		errs = append(errs, fmt.Errorf("hub: IP %q is not an IP address", cfg.IP))
	}
	for name, p := range cfg.Ports.byName() {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("hub: port %s=%d out of range", name, p))
		}
	}
	if cfg.Unsigned && cfg.Key != "" {
		errs = append(errs, errors.New("hub: Unsigned with a Key"))
	}
	if _, err := schemeByName(cfg.Scheme); err != nil {
		errs = append(errs, fmt.Errorf("hub: %w", err))
	}
	if cfg.Scheme == "" {
		cfg.Scheme = SchemeLeastLoad
	}
	switch {
	case cfg.HWM == 0:
		cfg.HWM = DefaultHWM
	case cfg.HWM < 0:
		cfg.HWM = 0 // the scheduler's "unlimited"
	}
	defaultDuration(&cfg.HeartbeatPeriod, DefaultHeartbeatPeriod, "HeartbeatPeriod", &errs)
	defaultDuration(&cfg.DeadEngineGrace, DefaultDeadEngineGrace, "DeadEngineGrace", &errs)
	defaultDuration(&cfg.RegistrationTimeout, DefaultRegistrationTimeout, "RegistrationTimeout", &errs)
	defaultDuration(&cfg.ShutdownTimeout, DefaultShutdownTimeout, "ShutdownTimeout", &errs)
	if cfg.HeartbeatMaxMisses == 0 {
		cfg.HeartbeatMaxMisses = DefaultHeartbeatMaxMisses
	} else if cfg.HeartbeatMaxMisses < 0 {
		errs = append(errs, fmt.Errorf("hub: HeartbeatMaxMisses %d < 0", cfg.HeartbeatMaxMisses))
	}
	if cfg.TaskMemory == 0 {
		cfg.TaskMemory = DefaultTaskMemory
	}
	if cfg.DBQueue == 0 {
		cfg.DBQueue = DefaultDBQueue
	} else if cfg.DBQueue < 0 {
		errs = append(errs, fmt.Errorf("hub: DBQueue %d < 0", cfg.DBQueue))
	}
	return cfg, errors.Join(errs...)
}

func defaultDuration(d *time.Duration, def time.Duration, name string, errs *[]error) {
	switch {
	case *d == 0:
		*d = def
	case *d < 0:
		*errs = append(*errs, fmt.Errorf("hub: %s %v < 0", name, *d))
	}
}

func (p Ports) byName() map[string]int {
	return map[string]int{
		"registration": p.Registration,
		"client_mux":   p.ClientMux, "engine_mux": p.EngineMux,
		"client_control": p.ClientControl, "engine_control": p.EngineControl,
		"client_task": p.ClientTask, "engine_task": p.EngineTask,
		"client_iopub": p.ClientIOPub, "engine_iopub": p.EngineIOPub,
		"client_broadcast": p.ClientBroadcast, "engine_broadcast": p.EngineBroadcast,
		"notification": p.Notification, "hb_ping": p.HBPing, "hb_pong": p.HBPong,
	}
}
