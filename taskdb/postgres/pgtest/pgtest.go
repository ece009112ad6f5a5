// Package pgtest gives tests a PostgreSQL server: the DSN in
// TASKHUB_TEST_POSTGRES_DSN and a fresh table per test.
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

// EnvDSN names the variable holding the test server's DSN; .ci/run sets
// it.
const EnvDSN = "TASKHUB_TEST_POSTGRES_DSN"

// DSN returns the test server's DSN. Without one the test is skipped, or
// fails when the environment variable CI is "true".
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		msg := "no PostgreSQL server: " + EnvDSN + " is empty"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg + " (set it to a DSN, e.g. postgres://postgres@127.0.0.1:5432/taskhub_test; CI=true makes this fail)")
	}
	return dsn
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
