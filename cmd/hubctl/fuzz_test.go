package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseQuery: any argument is accepted or refused, never a panic; an
// accepted query re-encodes to JSON that parses back to the same JSON (2e3
// comes back as the integer 2000, equal as a number).
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{`{"completed": {"$ne": null}}`, `{"x": 3, "y": [1.5, 2e3, -0], "z": {"$in": ["a"]}}`, `{} {}`, `null`, `[]`, `{"a": 9223372036854775808}`, `{"a": [1e400]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := parseQuery(s)
		if err != nil {
			return
		}
		b, err := json.Marshal(q)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", q, err)
		}
		q2, err := parseQuery(string(b))
		if err != nil {
			t.Fatalf("re-parse %s: %v", b, err)
		}
		if b2, _ := json.Marshal(q2); !bytes.Equal(b, b2) {
			t.Fatalf("round trip of %q:\n%s\n%s", s, b, b2)
		}
	})
}
