package taskdb_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/query"
)

func TestErrors(t *testing.T) {
	if !errors.Is(taskdb.ErrCulled, taskdb.ErrNotFound) {
		t.Error("ErrCulled must wrap ErrNotFound")
	}
	if errors.Is(taskdb.ErrNoData, taskdb.ErrNotFound) {
		t.Error("ErrNoData must not be ErrNotFound")
	}
	if _, err := query.ParseJSON([]byte(`{"a":{"$bad":1}}`)); !errors.Is(err, taskdb.ErrInvalidQuery) {
		t.Errorf("parse error %v is not ErrInvalidQuery", err)
	}
}

func TestSchema(t *testing.T) {
	if len(taskdb.SchemaKeys) != 22 {
		t.Fatalf("%d schema keys, want 22", len(taskdb.SchemaKeys))
	}
	r := taskdb.EmptyRecord("m")
	for _, k := range taskdb.SchemaKeys {
		v, ok := r[k]
		if !ok || !taskdb.IsSchemaKey(k) {
			t.Errorf("%s missing from EmptyRecord or not a schema key", k)
		}
		if want := taskdb.Default(k); k != "msg_id" && v != want {
			t.Errorf("%s = %v, want %v", k, v, want)
		}
	}
	for _, k := range taskdb.TimeKeys {
		if !taskdb.IsTimeKey(k) || !taskdb.IsSchemaKey(k) {
			t.Errorf("%s: IsTimeKey/IsSchemaKey false", k)
		}
	}
	if taskdb.IsSchemaKey("display_data") || taskdb.IsTimeKey("header") {
		t.Error("non-schema or non-time key accepted")
	}
}

func TestNormalize(t *testing.T) {
	zone := time.FixedZone("z", -3600)
	got, err := taskdb.Normalize("submitted", time.Date(2024, 1, 1, 0, 0, 0, 1500, zone))
	if want := time.Date(2024, 1, 1, 1, 0, 0, 1000, time.UTC); err != nil || !got.(time.Time).Equal(want) || got.(time.Time).Location() != time.UTC {
		t.Errorf("Normalize(time) = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []struct {
		key string
		v   any
	}{{"submitted", "2024"}, {"completed", int64(1)}, {"header", make(chan int)}} {
		if _, err := taskdb.Normalize(bad.key, bad.v); !errors.Is(err, taskdb.ErrInvalidRecord) {
			t.Errorf("Normalize(%s, %T): %v, want ErrInvalidRecord", bad.key, bad.v, err)
		}
	}
	got, err = taskdb.Normalize("content", taskdb.Record{"n": uint8(3)})
	if m, ok := got.(map[string]any); err != nil || !ok || m["n"] != int64(3) {
		t.Errorf("Normalize(Record) = %#v, %v", got, err)
	}
	// Docs read from a DB go back in, alone or in a list.
	got, err = taskdb.Normalize("x", []taskdb.Doc{{{Key: "a", Value: int64(1)}}, nil})
	if l, ok := got.([]any); err != nil || !ok || len(l) != 2 || l[0].(map[string]any)["a"] != int64(1) {
		t.Errorf("Normalize([]Doc) = %#v, %v", got, err)
	}
}

func TestDoc(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	r := taskdb.EmptyRecord("m")
	r["header"] = map[string]any{"msg_type": "apply_request", "date": at}
	r["buffers"] = []any{[]byte("x"), map[string]any{"n": int64(1)}}
	r["zeta"], r["alpha"] = "z", true
	d := taskdb.DocOf(r)
	var keys []string
	for _, f := range d {
		keys = append(keys, f.Key)
	}
	want := append(append([]string{}, taskdb.SchemaKeys[:]...), "alpha", "zeta")
	if !slices.Equal(keys, want) {
		t.Fatalf("DocOf keys %v, want %v", keys, want)
	}
	h, ok := d.Get("header").(taskdb.Doc)
	if !ok || h.Get("msg_type") != "apply_request" || h.Len() != 2 {
		t.Fatalf("header %#v, want a Doc", d.Get("header"))
	}
	if v, ok := d.Lookup("stdout"); !ok || v != "" {
		t.Errorf("Lookup(stdout) = %v, %v", v, ok)
	}
	if _, ok := d.Lookup("nope"); ok || d.Get("nope") != nil {
		t.Error("Lookup of a missing key succeeded")
	}

	// DocOf and Record are deep copies and inverse of each other.
	r["buffers"].([]any)[0].([]byte)[0] = 'y'
	if b := d.Get("buffers").([]any)[0].([]byte); string(b) != "x" {
		t.Errorf("DocOf shares buffers with its argument: %q", b)
	}
	back := d.Record()
	back["header"].(map[string]any)["msg_type"] = "changed"
	back["buffers"].([]any)[0].([]byte)[0] = 'z'
	if h.Get("msg_type") != "apply_request" || string(d.Get("buffers").([]any)[0].([]byte)) != "x" {
		t.Error("Record shares values with the Doc")
	}
	if _, ok := back["buffers"].([]any)[1].(map[string]any); !ok {
		t.Errorf("nested Doc in an array not converted: %T", back["buffers"].([]any)[1])
	}

	f, err := query.Parse(map[string]any{"header.msg_type": "apply_request", "alpha": true})
	if err != nil {
		t.Fatal(err)
	}
	if !f.MatchDoc(d) {
		t.Error("filter does not match the Doc")
	}

	// Writes accept Docs, as read back from a DB.
	c, err := taskdb.Normalize("header", h)
	if m, ok := c.(map[string]any); err != nil || !ok || m["msg_type"] != "apply_request" {
		t.Errorf("Normalize(Doc) = %#v, %v", c, err)
	}
}
