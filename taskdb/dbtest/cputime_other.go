//go:build !unix

package dbtest

import "time"

// cpuTime is unavailable here.
func cpuTime() (time.Duration, bool) { return 0, false }
