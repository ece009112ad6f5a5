package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// EnvPrefix starts the name of every environment variable read by [Load].
const EnvPrefix = "TASKHUB_"

// EnvName returns the environment variable for a dotted key:
// "db.backend" → "TASKHUB_DB_BACKEND".
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// leaf is one settable value of a Config, found by walking its struct tree.
type leaf struct {
	key string        // dotted path, e.g. "db.dict.record_limit"
	val reflect.Value // the addressable field
}

// leaves lists the settable fields of c in declaration order.
func leaves(c *Config) []leaf {
	var out []leaf
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			key := prefix + t.Field(i).Tag.Get("key")
			if f := v.Field(i); f.Kind() == reflect.Struct {
				walk(key+".", f)
			} else {
				out = append(out, leaf{key, f})
			}
		}
	}
	walk("", reflect.ValueOf(c).Elem())
	return out
}

// Keys returns every configuration key in declaration order.
func Keys() []string {
	var c Config
	var keys []string
	for _, l := range leaves(&c) {
		keys = append(keys, l.key)
	}
	return keys
}

// Load builds the effective configuration from, in increasing precedence:
// the defaults, the file at path (YAML, TOML or JSON by extension; none if
// path is ""), the environment variables named by [EnvName] as returned by
// env (nil: no environment), and flags (values by key, as from the command
// line). It then resolves the default directories (and the SQLite file in
// DataDir) and validates the result.
//
// Every problem is reported at once, joined: an unreadable file, keys the
// file should not have, values of the wrong type (naming the key and where
// the value came from), and the failures of [Config.Validate].
func Load(path string, env func(string) (string, bool), flags map[string]string) (Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	file, err := readFile(path)
	if err != nil {
		return Config{}, err
	}
	return load(file, path, env, flags)
}

// load is Load after the file, if any, has been parsed.
func load(file *viper.Viper, path string, env func(string) (string, bool), flags map[string]string) (Config, error) {
	cfg := Default()
	var errs []error
	known := map[string]bool{}
	for _, l := range leaves(&cfg) {
		known[l.key] = true
		var raw any
		var from string
		if s, ok := flags[l.key]; ok {
			raw, from = s, "flag"
		} else if s, ok := env(EnvName(l.key)); ok {
			raw, from = s, EnvName(l.key)
		} else if file != nil && file.IsSet(l.key) {
			raw, from = file.Get(l.key), path
		} else {
			continue
		}
		if err := set(l.val, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s (from %s): %w", l.key, from, err))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(flags)) {
		if !known[k] {
			errs = append(errs, fmt.Errorf("%s: unknown key%s", k, suggest(k)))
		}
	}
	if file != nil {
		errs = append(errs, unknownKeys(file, path, known)...)
	}
	if cfg.ConnectionDir == "" {
		cfg.ConnectionDir = DefaultConnectionDir(env)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = defaultDir(env, "XDG_DATA_HOME", "taskhub", ".local/share/taskhub")
	}
	if cfg.DB.SQLite.Path == "" && cfg.DataDir != "" {
		cfg.DB.SQLite.Path = filepath.Join(cfg.DataDir, "tasks.db")
	}
	if err := errors.Join(append(errs, cfg.Validate())...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// DefaultConnectionDir returns the connection directory used when
// connection_dir is "": $XDG_RUNTIME_DIR/taskhub, else
// $HOME/.taskhub/security, else "" when neither variable is set. env is
// os.LookupEnv or a stand-in for it.
func DefaultConnectionDir(env func(string) (string, bool)) string {
	return defaultDir(env, "XDG_RUNTIME_DIR", "taskhub", ".taskhub/security")
}

func defaultDir(env func(string) (string, bool), xdgVar, xdgSub, homeSub string) string {
	if d, ok := env(xdgVar); ok && filepath.IsAbs(d) {
		return filepath.Join(d, xdgSub)
	}
	if h, ok := env("HOME"); ok && h != "" {
		return filepath.Join(h, homeSub)
	}
	return ""
}

// readFile parses the config file; nil for no file.
func readFile(path string) (*viper.Viper, error) {
	if path == "" {
		return nil, nil
	}
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	switch ext {
	case "yaml", "yml", "toml", "json":
	default:
		return nil, fmt.Errorf("config file %s: unknown extension %q (want .yaml, .yml, .toml or .json)", path, filepath.Ext(path))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return parse(path, ext, b)
}

// parse decodes a config file's content in format ext (yaml, toml, json).
func parse(path, ext string, b []byte) (*viper.Viper, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter("."))
	v.SetConfigType(ext)
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return v, nil
}

// unknownKeys reports every key of the file that is not a setting: typos
// must not be silently ignored.
func unknownKeys(file *viper.Viper, path string, known map[string]bool) []error {
	var errs []error
	keys := file.AllKeys()
	slices.Sort(keys)
	for _, k := range keys {
		if known[k] {
			continue
		}
		if isSection(k, known) {
			if m, ok := file.Get(k).(map[string]any); !ok || len(m) > 0 {
				errs = append(errs, fmt.Errorf("%s (in %s): is a section; want keys below it, not a value", k, path))
			}
			continue
		}
		errs = append(errs, fmt.Errorf("%s (in %s): unknown key%s", k, path, suggest(k)))
	}
	return errs
}

func isSection(k string, known map[string]bool) bool {
	for kk := range known {
		if strings.HasPrefix(kk, k+".") {
			return true
		}
	}
	return false
}

// suggest names the known key closest to k, for typos.
func suggest(k string) string { return closest(k, Keys()) }

// closest returns " (did you mean X?)" for the candidate X nearest to s,
// or "" when none is close.
func closest(s string, candidates []string) string {
	best, bestD := "", 3 // suggest only close matches
	for _, c := range candidates {
		if d := distance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// ClientFileEnv names the client connection file for hubctl. It shares
// the TASKHUB_ prefix but is not a hubd setting.
const ClientFileEnv = EnvPrefix + "CLIENT_FILE"

// TestEnvPrefix starts the variables that point the test suite at its
// servers (TASKHUB_TEST_POSTGRES_DSN, ...): not hubd settings either.
const TestEnvPrefix = EnvPrefix + "TEST_"

// UnknownEnv returns the variables in environ (as os.Environ lists them)
// that start with EnvPrefix but name no setting, each with a hint when a
// setting's name is close, e.g.
// "TASKHUB_DB_BAKEND (did you mean TASKHUB_DB_BACKEND?)". Load ignores
// such variables; hubd warns about them.
func UnknownEnv(environ []string) []string {
	var names []string
	for _, k := range Keys() {
		names = append(names, EnvName(k))
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !strings.HasPrefix(name, TestEnvPrefix) && name != ClientFileEnv && !slices.Contains(names, name) {
			unknown = append(unknown, name+closest(name, names))
		}
	}
	slices.Sort(unknown)
	return unknown
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[ByteSize]()
)

// set stores raw into f. raw is a string (flags, environment) or a value
// parsed from the file: string, bool, int, int64, uint64, float64.
// A null in the file never gets here: viper treats it as unset, so the
// default stays.
func set(f reflect.Value, raw any) error {
	switch {
	case f.Type() == durationType:
		s, ok := raw.(string)
		if !ok {
			return fmt.Errorf("%v is not a duration (write it as a string, e.g. \"3s\", \"500ms\")", raw)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. \"3s\", \"500ms\", \"1m30s\")", s)
		}
		f.SetInt(int64(d))
		return nil
	case f.Type() == sizeType:
		if s, ok := raw.(string); ok {
			n, err := ParseByteSize(s)
			if err != nil {
				return err
			}
			f.SetInt(int64(n))
			return nil
		}
		n, err := toInt(raw)
		if err != nil || n < 0 {
			return fmt.Errorf("%v is not a size (write e.g. 1048576, \"64MiB\" or \"1GB\")", raw)
		}
		f.SetInt(n)
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return fmt.Errorf("%v is not a string", raw)
		}
		f.SetString(s)
	case reflect.Int:
		n, err := toInt(raw)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := toFloat(raw)
		if err != nil {
			return err
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("unsupported field kind %s", f.Kind()) // a Config field set cannot handle
	}
	return nil
}

func toInt(raw any) (int64, error) {
	switch r := raw.(type) {
	case int:
		return int64(r), nil
	case int64:
		return r, nil
	case uint64:
		if r <= math.MaxInt64 {
			return int64(r), nil
		}
	case float64: // JSON numbers
		if r == math.Trunc(r) && math.Abs(r) < 1<<53 {
			return int64(r), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(r), 10, 64); err == nil {
			return n, nil
		}
		return 0, fmt.Errorf("%q is not an integer", r)
	}
	return 0, fmt.Errorf("%v is not an integer", raw)
}

func toFloat(raw any) (float64, error) {
	switch r := raw.(type) {
	case int:
		return float64(r), nil
	case int64:
		return float64(r), nil
	case float64:
		return r, nil
	case string:
		if x, err := strconv.ParseFloat(strings.TrimSpace(r), 64); err == nil {
			return x, nil
		}
		return 0, fmt.Errorf("%q is not a number", r)
	}
	return 0, fmt.Errorf("%v is not a number", raw)
}
