//go:build race

package integration_test

// raceEnabled reports whether the tests run with -race; TestMain then
// builds hubd and hubctl with -race too, so that a data race in the real
// binaries fails the test that drove them.
const raceEnabled = true
