package main

import "testing"

func TestParseBench(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkDB/records=100000/Add-2     	 1000000	      1002 ns/op	    998000 records/s
BenchmarkDB/records=100000/Find/pending-2         	      20	 12000000 ns/op	     10000 hits/query	       12.00 ms/query
BenchmarkDB/records=100000/History 	     100	  2000000 ns/op	        2.000 ms/op
PASS
`)
	got := parseBench(out)
	for k, want := range map[string]float64{
		"Add records/s":           998000,
		"Add ns/op":               1002,
		"Find/pending hits/query": 10000,
		"Find/pending ms/query":   12,
		"History ms/op":           2,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], want, got)
		}
	}
}
