package mongodb

import (
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestUnavailable: a server error that says the server cannot serve now
// is retried even without the RetryableWriteError label, which a
// standalone server (no retryable writes) never sets; a write error is a
// rejection.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{mongo.CommandError{Code: 91, Name: "ShutdownInProgress"}, true},
		{mongo.CommandError{Code: 11600, Name: "InterruptedAtShutdown"}, true},
		{mongo.CommandError{Code: 10107, Name: "NotWritablePrimary"}, true},
		{mongo.CommandError{Code: 2, Name: "BadValue"}, false},
		{rejected{mongo.BulkWriteError{WriteError: mongo.WriteError{Code: 11000}}}, false},
	} {
		if got := unavailable(fmt.Errorf("apply: %w", tc.err)); got != tc.want {
			t.Errorf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
