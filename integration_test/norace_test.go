//go:build !race

package integration_test

// raceEnabled reports whether the tests run with -race; see race_test.go.
const raceEnabled = false
