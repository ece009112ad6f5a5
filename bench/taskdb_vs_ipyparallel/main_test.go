package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func TestParseBench(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkDB/records=100000/Add-2     	 1000000	      1002 ns/op	    998000 records/s
BenchmarkDB/records=100000/Find/pending-2         	      20	 12000000 ns/op	     10000 hits/query	       12.00 ms/query
BenchmarkDB/records=100000/History 	     100	  2000000 ns/op	        2.000 ms/op
BenchmarkDB/sync=batch/records=100000/Update-2  	  200000	      5000 ns/op	    200000 updates/s
PASS
`)
	got := parseBench(out)
	for k, want := range map[string]float64{
		"Add records/s":           998000,
		"Add ns/op":               1002,
		"Find/pending hits/query": 10000,
		"Find/pending ms/query":   12,
		"History ms/op":           2,
		"Update updates/s":        200000,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], want, got)
		}
	}
}

// TestBenchPattern checks that each backend's -bench pattern selects its
// benchmarks at one size, level by level as go test matches them.
func TestBenchPattern(t *testing.T) {
	for name, want := range map[string]string{
		"dict":   "BenchmarkDB/records=100000/Find/pending",
		"sqlite": "BenchmarkDB/sync=batch/records=100000/Find/pending",
	} {
		pattern := benchPattern(backends[name], 100_000)
		levels, elems := strings.Split(pattern, "/"), strings.Split(want, "/")
		for i, level := range levels {
			if i < len(elems) && !regexp.MustCompile(level).MatchString(elems[i]) {
				t.Errorf("%s: -bench %s does not select %s (level %d)", name, pattern, want, i)
			}
		}
		if other := strings.Replace(want, "100000", "1000000", 1); regexp.MustCompile(levels[len(levels)-2]).MatchString(strings.Split(other, "/")[len(levels)-2]) {
			t.Errorf("%s: -bench %s also selects %s", name, pattern, other)
		}
	}
}

// TestDriver runs driver.py on a small workload: it needs /usr/bin/python3
// with ipyparallel, skips without it, and fails without it when CI=true.
func TestDriver(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import ipyparallel").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s cannot import ipyparallel: %v", python, err)
		}
		t.Skipf("skipping: %s cannot import ipyparallel (%v); apt-get install python3-ipyparallel", python, err)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	got, err := runPython(root, python, "DictDB", 1000, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metrics {
		if _, ok := got[m.name]; !ok && !strings.Contains(m.name, "cpu-ns") {
			t.Errorf("driver.py did not report %q (got %v)", m.name, got)
		}
	}
	if got["Find/pending hits/query"] != 100 || got["Find/msg_id_in_100 ms/query"] <= 0 {
		t.Errorf("driver.py workload differs from dbtest's: %v", got)
	}
}
