package hub

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
	"github.com/taskhub/taskhub/taskdb/dictdb"
)

// testConfig is a fast hub for tests: short heartbeats and grace. An
// engine is declared dead after about a second of silence, long enough
// for a fake engine's heart on a loaded machine under -race.
func testConfig(t testing.TB) Config {
	return Config{
		ConnectionDir:      t.TempDir(),
		HeartbeatPeriod:    100 * time.Millisecond,
		HeartbeatMaxMisses: 10,
		DeadEngineGrace:    200 * time.Millisecond,
		ShutdownTimeout:    2 * time.Second,
	}
}

// startHub runs a hub until the test ends and checks that Run returns nil.
func startHub(t testing.TB, cfg Config, db taskdb.DB) *Hub {
	t.Helper()
	if db == nil {
		db = dictdb.New(dictdb.Options{})
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := New(cfg, db, log)
	if err != nil {
		t.Fatal(err)
	}
	runHub(t, h, cfg)
	return h
}

// runHub listens and runs h until the test ends, then checks that Run
// returns nil in time and closes the DB.
func runHub(t testing.TB, h *Hub, cfg Config) {
	t.Helper()
	if err := h.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
			t.Errorf("Run did not return")
		}
		h.db.Close()
	})
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func createFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
