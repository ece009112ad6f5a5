package wiretest_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/taskhub/taskhub/wire/wiretest"
)

// fakeTB records how Python gave up; it stops the calling goroutine as
// testing.T does.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...); runtime.Goexit() }

func call(tb *fakeTB, modules ...string) (path string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		path = wiretest.Python(tb, modules...)
	}()
	<-done
	return path
}

func TestPythonMissingModule(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			tb := &fakeTB{TB: t}
			if path := call(tb, "no_such_module_xyz"); path != "" {
				t.Fatalf("returned %q for a missing module", path)
			}
			msg := tb.skipped
			if ci == "true" {
				if tb.skipped != "" || tb.fatal == "" {
					t.Fatalf("CI=true: skipped %q, fatal %q; want a failure", tb.skipped, tb.fatal)
				}
				msg = tb.fatal
			} else if tb.fatal != "" || tb.skipped == "" {
				t.Fatalf("skipped %q, fatal %q; want a skip", tb.skipped, tb.fatal)
			}
			if !strings.Contains(msg, "no_such_module_xyz") {
				t.Errorf("message %q does not name the module", msg)
			}
		})
	}
}

func TestPythonPresent(t *testing.T) {
	// "sys" is always importable when the interpreter exists.
	if path := wiretest.Python(t, "sys"); path != wiretest.PythonPath {
		t.Fatalf("Python = %q", path)
	}
}
