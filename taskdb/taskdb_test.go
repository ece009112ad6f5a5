package taskdb_test

import (
	"errors"
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
}
