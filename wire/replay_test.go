package wire_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/taskhub/taskhub/wire"
)

func TestReplay(t *testing.T) {
	s := newSession(t, wire.Config{Key: testKey})
	genuine := encode(t, s, taskMessage(s))

	// A tampered copy carrying the genuine signature arrives first: it
	// must fail as a bad signature and leave no trace (§10.20).
	tampered := append([][]byte(nil), genuine...)
	tampered[6] = []byte{0x81, 0xa1, 'x', 0x01}
	if _, err := s.Decode(tampered); !errors.Is(err, wire.ErrBadSignature) {
		t.Fatalf("tampered copy: %v, want ErrBadSignature", err)
	}
	if _, err := s.Decode(genuine); err != nil {
		t.Fatalf("genuine after tampered copy: %v", err)
	}
	if _, err := s.Decode(genuine); !errors.Is(err, wire.ErrReplayed) {
		t.Fatalf("replay: %v, want ErrReplayed", err)
	}
	// Other identities do not make a replay new: they are not signed.
	again := append([][]byte{[]byte("someone-else")}, genuine[1:]...)
	if _, err := s.Decode(again); !errors.Is(err, wire.ErrReplayed) {
		t.Fatalf("replay with other identities: %v, want ErrReplayed", err)
	}
}

// TestReplayEviction checks the history is bounded and forgets the oldest
// signature first.
func TestReplayEviction(t *testing.T) {
	s := newSession(t, wire.Config{Key: testKey, ReplayHistory: 2})
	m1, m2, m3 := encode(t, s, taskMessage(s)), encode(t, s, taskMessage(s)), encode(t, s, taskMessage(s))
	for _, step := range []struct {
		name   string
		frames [][]byte
		want   error
	}{
		{"m1", m1, nil},
		{"m2", m2, nil},
		{"m1 again", m1, wire.ErrReplayed},
		{"m3 evicts m1", m3, nil},
		{"m1 forgotten", m1, nil}, // evicts m2
		{"m3 remembered", m3, wire.ErrReplayed},
		{"m2 forgotten", m2, nil},
	} {
		if _, err := s.Decode(step.frames); !errors.Is(err, step.want) {
			t.Fatalf("%s: %v, want %v", step.name, err, step.want)
		}
	}
}

func TestReplayDisabled(t *testing.T) {
	s := newSession(t, wire.Config{Key: testKey, ReplayHistory: -1})
	f := encode(t, s, taskMessage(s))
	for range 3 {
		if _, err := s.Decode(f); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnsignedSession(t *testing.T) {
	s := newSession(t, wire.Config{})
	f := encode(t, s, taskMessage(s))
	if len(f[2]) != 0 {
		t.Fatalf("signature %q with no key", f[2])
	}
	// Nothing is checked: a stray signature and repeats are accepted.
	f[2] = []byte("whatever")
	for range 2 {
		if _, err := s.Decode(f); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentDecode runs under -race: socket owners share a Session,
// and of many goroutines decoding the same message exactly one wins.
func TestConcurrentDecode(t *testing.T) {
	s := newSession(t, wire.Config{Key: testKey})
	const workers, perWorker = 8, 50
	shared := encode(t, s, taskMessage(s))
	var ok, replayed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				f, err := s.Encode(taskMessage(s))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Decode(f); err != nil {
					t.Error(err)
					return
				}
			}
			switch _, err := s.Decode(shared); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, wire.ErrReplayed):
				replayed.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != workers-1 {
		t.Errorf("shared message: %d accepted, %d replayed; want 1 and %d", ok.Load(), replayed.Load(), workers-1)
	}
}
