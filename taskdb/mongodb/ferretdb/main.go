// Command ferretdb is the MongoDB test fixture for taskdb/mongodb: an
// embedded FerretDB with its SQLite handler, serving the MongoDB wire
// protocol on one address and storing into one directory until it gets
// SIGINT or SIGTERM.
//
// It lives in its own module so neither taskhub nor hubd depends on
// FerretDB. It is a slow stand-in for tests only; taskdb/mongodb targets
// real MongoDB.
//
// Usage:
//
//	ferretdb -addr 127.0.0.1:0 -dir /tmp/data
//
// Once it accepts connections it prints one line to stdout, the MongoDB
// URI to connect to, e.g. "mongodb://127.0.0.1:41234/". A restart with
// that address and the same directory serves the same data.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "TCP `address` to listen on")
	dir := flag.String("dir", "", "data `directory` (required; created if missing)")
	flag.Parse()
	if err := run(*addr, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run(addr, dir string) error {
	if dir == "" {
		return fmt.Errorf("-dir is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: addr},
		Logger:   logger,
		Handler:  "sqlite",
		// synchronous(off): a test server needs no fsync. Writes reach the
		// OS before they are acknowledged, so they survive the fixture
		// being killed, which is what the outage tests do.
		SQLiteURL: (&url.URL{Scheme: "file", Path: abs + "/", RawQuery: "_pragma=synchronous(off)"}).String(),
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The listener is bound by New, so the address is final and connectable.
	fmt.Println(f.MongoDBURI())
	return f.Run(ctx)
}
