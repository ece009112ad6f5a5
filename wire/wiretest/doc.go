// Package wiretest holds helpers for tests that talk to Python peers of the
// wire protocol (jupyter_client, ipyparallel). Python finds the reference
// interpreter, skipping the test locally when it or a module is missing and
// failing it when CI=true, so CI always runs the interop tests.
package wiretest
