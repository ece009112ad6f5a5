// Hubd runs the taskhub hub: an ipyparallel 7.1 compatible controller that
// unmodified ipyparallel clients and engines connect to.
//
// Usage:
//
//	hubd [flags]               run the hub
//	hubd [flags] config print  print the effective configuration (key redacted)
//	hubd --version | --help
//
// Settings come from flags, then TASKHUB_* environment variables, then the
// file given with --config (YAML, TOML or JSON), then defaults; see
// README.md (Configuration) and hub.example.yaml. On start hubd prints one block with
// its version, listening addresses, database backend and the path of the
// client connection file, which clients and hubctl read.
//
// SIGINT or SIGTERM shuts the hub down gracefully within shutdown_timeout
// and exits 0; a second signal exits at once. Exit status: 0 clean, 1
// runtime failure, 2 bad configuration or usage.
package main
