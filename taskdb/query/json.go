package query

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// ParseJSON compiles a query written as JSON. Integers become int64 and
// other numbers float64. Single-key objects in MongoDB extended JSON stand
// for values JSON lacks: {"$date": "RFC 3339 time"}, {"$binary": base64},
// {"$numberDouble": "NaN" | "Infinity" | "-Infinity"}.
func ParseJSON(b []byte) (*Filter, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, syntaxErr("", "", "bad JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, syntaxErr("", "", "bad JSON: data after the query document")
	}
	v, err := fromJSON(raw)
	if err != nil {
		return nil, syntaxErr("", "", "%v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, syntaxErr("", "", "must be a JSON object, got %s", typeName(v))
	}
	return Parse(m)
}

// fromJSON converts decoded JSON into the value model.
func fromJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s out of range", x)
		}
		return f, nil
	case []any:
		for i, e := range x {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	case map[string]any:
		if len(x) == 1 {
			if v, ok, err := fromExtended(x); ok || err != nil {
				return v, err
			}
		}
		for k, e := range x {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	}
	return v, nil
}

// fromExtended decodes a single-key extended JSON object; ok is false if
// m is an ordinary object.
func fromExtended(m map[string]any) (v any, ok bool, err error) {
	for k, e := range m {
		s, isStr := e.(string)
		switch k {
		case "$date":
			if !isStr {
				return nil, true, fmt.Errorf("$date needs an RFC 3339 string")
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, true, fmt.Errorf("$date: %v", err)
			}
			ct, err := CanonicalTime(t)
			return ct, true, err
		case "$binary":
			if !isStr {
				return nil, true, fmt.Errorf("$binary needs a base64 string")
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, true, fmt.Errorf("$binary: %v", err)
			}
			return b, true, nil
		case "$numberDouble":
			switch s {
			case "NaN":
				return math.NaN(), true, nil
			case "Infinity":
				return math.Inf(1), true, nil
			case "-Infinity":
				return math.Inf(-1), true, nil
			}
			return nil, true, fmt.Errorf(`$numberDouble needs "NaN", "Infinity" or "-Infinity"`)
		}
	}
	return nil, false, nil
}
