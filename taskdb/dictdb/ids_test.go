package dictdb

import (
	"fmt"
	"testing"
)

// TestIDIndexCollisions checks the index when ids share hashes: all of
// them, or pairs.
func TestIDIndexCollisions(t *testing.T) {
	for name, hash := range map[string]func(string) uint64{
		"one":   func(string) uint64 { return 7 },
		"pairs": func(id string) uint64 { return uint64(len(id)) },
	} {
		t.Run(name, func(t *testing.T) {
			var s store
			x := idIndex{recs: &s, hash: hash, byHash: map[uint64]uint64{}}
			recs := map[string]*rec{}
			for i := range 40 {
				id := fmt.Sprint("m", i)
				r := s.alloc(uint64(i + 1))
				s.put(r, []byte(id))
				r.idn = len(id)
				recs[id] = r
				x.put(r, hash(id))
			}
			for i := range 40 {
				id := fmt.Sprint("m", i)
				if got := x.get(id); got != recs[id] {
					t.Fatalf("get(%s) = %v", id, got)
				}
			}
			if x.len() != 40 {
				t.Fatalf("len %d", x.len())
			}
			for i := range 40 {
				id := fmt.Sprint("m", (i*7)%40) // an order that deletes the hashed record of a group first
				x.del(recs[id])
				delete(recs, id)
				if x.get(id) != nil || x.len() != len(recs) {
					t.Fatalf("after del(%s): get %v, len %d", id, x.get(id), x.len())
				}
				for id, r := range recs {
					if x.get(id) != r {
						t.Fatalf("after a del, get(%s) = %v", id, x.get(id))
					}
				}
			}
		})
	}
}
