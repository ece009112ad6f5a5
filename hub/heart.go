package hub

import (
	"strconv"
	"time"
)

// heart is the heartbeat monitor (ipyparallel's HeartMonitor) as pure
// state. Each beat publishes a payload, the seconds since start as a
// decimal string; an engine's Heart echoes it on the pong socket. A pong
// counts if it echoes the current or the previous payload. Only the state
// goroutine uses it.
type heart struct {
	start     time.Time
	maxMisses int
	cur, prev string
	responded idSet          // uuids that answered since the last beat
	misses    map[string]int // consecutive misses of live hearts
	suspects  map[string]int // hearts to probe: 0 until the probe ping is sent, then 1
}

func newHeart(start time.Time, maxMisses int) *heart {
	return &heart{start: start, maxMisses: maxMisses, responded: idSet{}, misses: map[string]int{}, suspects: map[string]int{}}
}

// suspect asks for a probe of a live heart: if it does not answer the ping
// of the next beat, that beat stops it without waiting for maxMisses.
func (h *heart) suspect(uuid string) {
	if _, ok := h.suspects[uuid]; !ok {
		h.suspects[uuid] = 0
	}
}

// pong records an echo. It returns false for a stale or foreign payload.
func (h *heart) pong(uuid, payload string) bool {
	if h.cur == "" || (payload != h.cur && payload != h.prev) {
		return false
	}
	h.responded.add(uuid)
	return true
}

// beat closes the current period for the live hearts and returns the
// next ping payload and the hearts that missed more than maxMisses beats
// in a row, or a probe (now stopped, and forgotten).
func (h *heart) beat(now time.Time, live []string) (payload string, stopped []string) {
	for _, uuid := range live {
		if probe, ok := h.suspects[uuid]; ok {
			switch {
			case probe == 0: // the ping sent now is the probe
				h.suspects[uuid] = 1
			case h.responded.has(uuid):
				delete(h.suspects, uuid)
			default:
				h.forget(uuid)
				stopped = append(stopped, uuid)
				continue
			}
		}
		if h.cur == "" || h.responded.has(uuid) {
			delete(h.misses, uuid)
			continue
		}
		h.misses[uuid]++
		if h.misses[uuid] > h.maxMisses {
			h.forget(uuid)
			stopped = append(stopped, uuid)
		}
	}
	h.responded = idSet{}
	h.prev = h.cur
	h.cur = strconv.FormatFloat(now.Sub(h.start).Seconds(), 'f', -1, 64)
	if h.cur == h.prev { // two beats in one clock tick
		h.cur += "0"
	}
	return h.cur, stopped
}

// forget drops a heart's miss count and probe (its engine left).
func (h *heart) forget(uuid string) {
	delete(h.misses, uuid)
	delete(h.suspects, uuid)
}
