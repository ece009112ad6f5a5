package postgres

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestUnavailable: only errors that the write itself causes (bad data,
// a constraint, a limit) are rejections, which the queue drops; every
// other server error is retried, so an acknowledged write is never
// dropped because of the server's state.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		code string
		want bool
	}{
		{"08006", true},  // connection failure
		{"53100", true},  // disk full
		{"57P01", true},  // admin shutdown
		{"57014", true},  // query canceled (statement_timeout, pg_cancel_backend)
		{"55P03", true},  // lock not available (lock_timeout)
		{"25006", true},  // read-only transaction (a standby after failover)
		{"58030", true},  // I/O error
		{"XX000", true},  // internal error
		{"40001", true},  // serialization failure
		{"23505", false}, // unique violation
		{"22021", false}, // bad encoding
		{"54000", false}, // program limit exceeded (row too big)
	} {
		err := fmt.Errorf("apply: %w", &pgconn.PgError{Code: tc.code})
		if got := unavailable(err); got != tc.want {
			t.Errorf("unavailable(%s) = %v, want %v", tc.code, got, tc.want)
		}
	}
}
