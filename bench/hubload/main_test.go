package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/taskhub/taskhub/hub"
	"github.com/taskhub/taskhub/taskdb/dictdb"
)

// TestRunAgainstHub drives an in-process hub for a short while and checks
// the report.
func TestRunAgainstHub(t *testing.T) {
	dir := t.TempDir()
	h, err := hub.New(hub.Config{ConnectionDir: dir, HeartbeatPeriod: 100 * time.Millisecond},
		dictdb.New(dictdb.Options{}), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var out strings.Builder
	err = run(t.Context(), []string{"-dir", dir, "-engines", "2", "-clients", "2", "-window", "8",
		"-duration", "500ms", "-warmup", "100ms"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tasks/s", "task latency: p50=", "queries: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "tasks: 0 ") {
		t.Errorf("no tasks ran:\n%s", out.String())
	}
	if err := run(t.Context(), []string{"-dir", t.TempDir()}, &out); err == nil {
		t.Error("missing connection files accepted")
	}
}
