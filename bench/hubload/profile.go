package main

import (
	"context"
	"os"
	"runtime/pprof"
)

// Profile labels: every goroutine of the generator carries party=gen,
// every goroutine of an in-process hub party=hub (goroutines inherit the
// labels of the one that starts them), so that
//
//	go tool pprof -tagfocus party=hub hubload cpu.out
//
// shows the hub's share of a -cpuprofile without the generator's.
const (
	labelParty = "party"
	partyGen   = "gen"
	partyHub   = "hub"
)

// as runs f with the goroutines it starts labelled party.
func as(ctx context.Context, party string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(labelParty, party), f)
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
