package client_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/taskhub/taskhub/hub"
	"github.com/taskhub/taskhub/hub/client"
	"github.com/taskhub/taskhub/hub/connfile"
	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
	"github.com/taskhub/taskhub/taskdb/nodb"
	"github.com/taskhub/taskhub/wire"
)

// startHub runs a real hub on 127.0.0.1 until the test ends. It returns
// the client connection file and a function waiting for Run's result.
func startHub(t testing.TB, packer string, db taskdb.DB) (connfile.Client, func() error) {
	t.Helper()
	return startHubConfig(t, hub.Config{Packer: packer}, db)
}

// startHubConfig is startHub with a chosen configuration.
func startHubConfig(t testing.TB, cfg hub.Config, db taskdb.DB) (connfile.Client, func() error) {
	t.Helper()
	cfg.ConnectionDir = t.TempDir()
	h, err := hub.New(cfg, db,
		slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	var runErr error
	go func() { runErr = h.Run(ctx); close(stopped) }()
	wait := func() error {
		select {
		case <-stopped:
			return runErr
		case <-time.After(10 * time.Second):
			return errors.New("hub did not stop within 10s")
		}
	}
	t.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("hub Run: %v", err)
		}
	})
	path, _ := h.ConnectionFiles()
	cf, err := connfile.ReadClient(path)
	if err != nil {
		t.Fatal(err)
	}
	return cf, wait
}

func wantWireError(t *testing.T, err error, name string) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Name != name {
		t.Errorf("err = %v, want a %s from the hub", err, name)
	}
}

// The client and the real hub agree on every query, with both packers.
func TestRealHub(t *testing.T) {
	for _, packer := range []string{"msgpack", "json"} {
		t.Run(packer, func(t *testing.T) {
			cf, wait := startHub(t, packer, dictdb.New(dictdb.Options{}))
			c, err := client.Dial(t.Context(), cf, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := t.Context()
			if engines, err := c.Connection(ctx); err != nil || len(engines) != 0 {
				t.Errorf("Connection = %v, %v", engines, err)
			}
			if qs, err := c.QueueStatus(ctx, nil, true); err != nil || len(qs.Engines) != 0 || qs.Unassigned != 0 {
				t.Errorf("QueueStatus = %+v, %v", qs, err)
			}
			_, err = c.QueueStatus(ctx, []int{99}, false)
			wantWireError(t, err, "IndexError")
			if h, err := c.History(ctx); err != nil || len(h) != 0 {
				t.Errorf("History = %v, %v", h, err)
			}
			if recs, err := c.DBQuery(ctx, map[string]any{"completed": map[string]any{"$ne": nil}}, []string{"buffers"}); err != nil || len(recs) != 0 {
				t.Errorf("DBQuery = %v, %v", recs, err)
			}
			_, err = c.DBQuery(ctx, map[string]any{"completed": map[string]any{"$bogus": 1}}, nil)
			wantWireError(t, err, "InvalidQuery")
			_, err = c.ResultStatus(ctx, []string{"nope"})
			wantWireError(t, err, "KeyError")
			_, err = c.Results(ctx, []string{"nope"})
			wantWireError(t, err, "KeyError")
			_, err = c.Resubmit(ctx, []string{"nope"})
			wantWireError(t, err, "KeyError")
			if err := c.Purge(ctx, []string{"nope"}, nil); err != nil {
				t.Errorf("Purge: %v", err)
			}
			wantWireError(t, c.Purge(ctx, nil, []int{7}), "IndexError")
			if err := c.PurgeAll(ctx); err != nil {
				t.Errorf("PurgeAll: %v", err)
			}
			if err := c.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := wait(); err != nil {
				t.Errorf("Run after shutdown_request: %v", err)
			}
		})
	}
}

// With the nodb backend, reads fail with the hub's NoData error.
func TestRealHubNoDB(t *testing.T) {
	cf, _ := startHub(t, "msgpack", nodb.New())
	c, err := client.Dial(t.Context(), cf, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.History(t.Context())
	wantWireError(t, err, "NoData")
}

// A Client keeps working when its hub is replaced by a new one on the
// same query port and key, as when hubd restarts.
func TestRealHubRestart(t *testing.T) {
	cf, wait := startHub(t, "msgpack", dictdb.New(dictdb.Options{}))
	c, err := client.Dial(t.Context(), cf, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	startHubConfig(t, hub.Config{Packer: "msgpack", Key: cf.Key, Ports: hub.Ports{Registration: cf.Registration}}, dictdb.New(dictdb.Options{}))
	for i := range 3 { // the first call may still go out on the old connection
		_, err = c.History(t.Context())
		if err == nil || !errors.Is(err, client.ErrConnectionLost) {
			break
		}
		t.Logf("call %d: %v", i, err)
	}
	if err != nil {
		t.Errorf("History after the restart: %v", err)
	}
}
