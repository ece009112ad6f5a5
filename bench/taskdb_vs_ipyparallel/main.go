// Command taskdb_vs_ipyparallel runs one workload through a taskhub task
// database and through its ipyparallel counterpart, and prints both
// figures and their ratio.
//
// Run it from the repository:
//
//	go run ./bench/taskdb_vs_ipyparallel [-records 100000] [-db dict|sqlite] [-benchtime 1s]
//
// The Go side is `go test -bench BenchmarkDB` of the backend's package,
// which runs taskdb/dbtest.Bench; the Python side is driver.py, the same
// workload (dbtest.Workload) through ipyparallel 7.1 with /usr/bin/python3.
// Without ipyparallel the Python column is skipped with a message. To
// compare another backend, add it to backends: its package must run
// dbtest.Bench in BenchmarkDB, and driver.py's make_db must build the
// ipyparallel class named.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// backend pairs a taskhub backend with its ipyparallel counterpart.
type backend struct {
	pkg     string // Go package whose BenchmarkDB runs dbtest.Bench
	config  string // BenchmarkDB's sub-benchmark above records=, if it has one
	pyClass string // class driver.py instantiates
}

var backends = map[string]backend{
	"dict":   {pkg: "./taskdb/dictdb", pyClass: "DictDB"},
	"sqlite": {pkg: "./taskdb/sqlitedb", config: "sync=batch", pyClass: "SQLiteDB"},
}

// metric is one row of the table: its name in both outputs, and whether
// bigger is better.
type metric struct {
	name   string
	higher bool
}

var metrics = []metric{
	{"Add records/s", true},
	{"Add cpu-ns/op", false},
	{"Update updates/s", true},
	{"Update cpu-ns/op", false},
	{"Load B/record", false},
	{"Find/pending ms/query", false},
	{"Find/pending hits/query", true},
	{"Find/client_pending ms/query", false},
	{"Find/client_pending hits/query", true},
	{"Find/msg_id ms/query", false},
	{"Find/msg_id_keys ms/query", false},
	{"Find/msg_id_in_100 ms/query", false},
	{"Find/submitted_lt_mid_keys ms/query", false},
	{"History ms/op", false},
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "taskdb_vs_ipyparallel:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taskdb_vs_ipyparallel", flag.ContinueOnError)
	records := fs.Int("records", 100_000, "records in the database: 100000 or 1000000")
	db := fs.String("db", "dict", "taskhub backend (db.backend)")
	benchtime := fs.String("benchtime", "1s", "go test -benchtime for each Go benchmark")
	python := fs.String("python", "/usr/bin/python3", "Python with ipyparallel 7.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, ok := backends[*db]
	if !ok {
		return fmt.Errorf("unknown -db %q", *db)
	}
	if *records != 100_000 && *records != 1_000_000 {
		return fmt.Errorf("-records must be 100000 or 1000000 (the sizes dbtest.Bench runs)")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}

	fmt.Fprintf(stderr, "running %s benchmarks at %d records...\n", b.pkg, *records)
	goFigures, err := runGo(root, b, *records, *benchtime, stderr)
	if err != nil {
		return err
	}
	var pyFigures map[string]float64
	if err := exec.Command(*python, "-c", "import ipyparallel").Run(); err != nil {
		fmt.Fprintf(stderr, "skipping the Python side: %s cannot import ipyparallel (%v)\n", *python, err)
	} else {
		fmt.Fprintf(stderr, "running ipyparallel %s at %d records...\n", b.pyClass, *records)
		pyFigures, err = runPython(root, *python, b.pyClass, *records, stderr)
		if err != nil {
			return err
		}
	}
	printTable(stdout, *db, b.pyClass, goFigures, pyFigures)
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from inside the taskhub module")
	}
	return filepath.Dir(mod), nil
}

// benchLine matches a benchmark result: name (with the backend's config
// level, if any), iterations, then value-unit pairs.
var benchLine = regexp.MustCompile(`^BenchmarkDB/(?:[^/\s]+/)?records=\d+/(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// benchPattern is the -bench pattern selecting b's benchmarks at records.
func benchPattern(b backend, records int) string {
	levels := []string{"^BenchmarkDB$"}
	if b.config != "" {
		levels = append(levels, "^"+regexp.QuoteMeta(b.config)+"$")
	}
	return strings.Join(append(levels, fmt.Sprintf("^records=%d$", records), ""), "/")
}

func runGo(root string, b backend, records int, benchtime string, stderr io.Writer) (map[string]float64, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", benchPattern(b, records),
		"-benchtime", benchtime, "-timeout", "30m", b.pkg)
	cmd.Dir = root
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test -bench %s: %w\n%s", b.pkg, err, out)
	}
	figures := parseBench(out)
	if len(figures) == 0 {
		return nil, fmt.Errorf("go test -bench %s %s: no benchmark results\n%s", benchPattern(b, records), b.pkg, out)
	}
	return figures, nil
}

// parseBench turns benchmark output into "Name unit" → value.
func parseBench(out []byte) map[string]float64 {
	figures := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				figures[m[1]+" "+f[i+1]] = v
			}
		}
	}
	return figures
}

func runPython(root, python, class string, records int, stderr io.Writer) (map[string]float64, error) {
	cmd := exec.Command(python, filepath.Join(root, "bench", "taskdb_vs_ipyparallel", "driver.py"),
		"--records", strconv.Itoa(records), "--db", class)
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("driver.py: %w", err)
	}
	var figures map[string]float64
	if err := json.Unmarshal(out, &figures); err != nil {
		return nil, fmt.Errorf("driver.py output: %w", err)
	}
	return figures, nil
}

func printTable(w io.Writer, db, class string, goF, pyF map[string]float64) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "metric\ttaskhub %s\tipyparallel %s\ttaskhub advantage\t\n", db, class)
	for _, m := range metrics {
		g, gok := goF[m.name]
		p, pok := pyF[m.name]
		ratio := "-"
		if gok && pok && g > 0 && p > 0 && !strings.Contains(m.name, "hits") {
			r := p / g
			if m.higher {
				r = g / p
			}
			ratio = fmt.Sprintf("%.1fx", r)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", m.name, format(g, gok), format(p, pok), ratio)
	}
	tw.Flush()
}

func format(v float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
