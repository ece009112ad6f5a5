// Package config loads the configuration of hubd, the taskhub daemon. It is
// the only package that imports viper; everything else receives the plain
// [Config] struct tree.
//
// A setting comes from, in decreasing precedence: a command-line flag, an
// environment variable (TASKHUB_ plus the dotted key in upper case with "."
// replaced by "_", e.g. TASKHUB_DB_BACKEND=nodb), the config file (YAML,
// TOML or JSON, chosen by extension), or the default ([Default]).
//
// [Load] reports every problem at once: unknown keys in the file (typos
// are errors, not silently ignored), values of the wrong type, and invalid
// values ([Config.Validate]), each naming the key and what is allowed.
// Durations are Go duration strings ("3s"); sizes are integers or strings
// such as "64MiB" ([ParseByteSize]). [Config.YAML] prints the effective
// configuration with the HMAC key redacted. hub.example.yaml at the root of
// the repository documents every key with its default.
package config
