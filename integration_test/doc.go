// Package integration_test runs the real hubd and hubctl binaries end to end
// on 127.0.0.1: hubd started from a temporary config file, driven by hubctl
// and by the unmodified ipyparallel 7.1 Client with real engines
// (testdata/driver.py).
//
// TestMain builds both binaries once. The tests needing Python skip when
// /usr/bin/python3 cannot import ipyparallel, zmq and msgpack, and fail
// instead when CI=true. Every process started runs in its own process group
// and is killed when its test ends; every wait is bounded.
package integration_test
