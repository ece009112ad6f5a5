package wiretest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// PythonPath is the interpreter the interop tests use.
const PythonPath = "/usr/bin/python3"

// Python returns PythonPath if it can import every module in modules. If it
// cannot, the test is skipped with the reason, or fails when the
// environment variable CI is "true": CI must run the interop tests.
func Python(tb testing.TB, modules ...string) string {
	tb.Helper()
	script := "import sys"
	if len(modules) > 0 {
		script = "import " + strings.Join(modules, ", ")
	}
	out, err := exec.Command(PythonPath, "-c", script).CombinedOutput()
	if err != nil {
		msg := "python interop unavailable: " + PythonPath + " -c '" + script + "': " + err.Error() + ": " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg + " (install python3-jupyter-client python3-msgpack python3-zmq; CI=true makes this fail)")
	}
	return PythonPath
}
