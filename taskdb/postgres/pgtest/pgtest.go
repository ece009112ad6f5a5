// Package pgtest gives tests a PostgreSQL server: the DSN in
// TASKHUB_TEST_POSTGRES_DSN and a fresh table per test, or a private
// cluster from the binaries in TASKHUB_TEST_POSTGRES_BIN.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables naming the test server's DSN and the directory
// of the PostgreSQL binaries (initdb, pg_ctl); .ci/run sets both.
const (
	EnvDSN = "TASKHUB_TEST_POSTGRES_DSN"
	EnvBin = "TASKHUB_TEST_POSTGRES_BIN"
)

// DSN returns the test server's DSN. Without one the test is skipped, or
// fails when the environment variable CI is "true".
func DSN(tb testing.TB) string {
	tb.Helper()
	return need(tb, EnvDSN, "postgres://postgres@127.0.0.1:5432/taskhub_test")
}

// Bin returns the directory of the PostgreSQL binaries, skipping or
// failing as DSN does.
func Bin(tb testing.TB) string {
	tb.Helper()
	return need(tb, EnvBin, "/usr/lib/postgresql/15/bin")
}

func need(tb testing.TB, env, example string) string {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		msg := "no PostgreSQL for this test: " + env + " is empty"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg + " (set it, e.g. to " + example + "; CI=true makes this fail)")
	}
	return v
}

// Table returns a table name no other test uses; the table is dropped
// when the test ends.
func Table(tb testing.TB, dsn string) string {
	tb.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	name := "test_" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop table %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS "+name); err != nil {
			tb.Errorf("drop table %s: %v", name, err)
		}
	})
	return name
}
