package sqlitedb

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCatalogHistory drives the catalog with random adds, submitted
// changes and drops, and compares its history with a sort of a plain map.
func TestCatalogHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := newCatalog()
	type rec struct{ seq, sub int64 }
	model := map[string]rec{}
	seq := int64(1)
	for step := range 20_000 {
		id := fmt.Sprint(rng.IntN(3000))
		sub := int64(rng.IntN(5000)) // many ties; 1 in 10 without a time
		if rng.IntN(10) == 0 {
			sub = noTime
		}
		switch _, ok := model[id]; {
		case !ok:
			c.add(entry{id: id, sub: sub})
			model[id] = rec{seq, sub}
			seq++
		case rng.IntN(2) == 0:
			c.setSubmitted(id, sub)
			model[id] = rec{model[id].seq, sub}
		default:
			c.drop(id)
			delete(model, id)
		}
		if step%1000 != 0 {
			continue
		}
		if err := c.check(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		var want []string
		for id, r := range model {
			if r.sub != noTime {
				want = append(want, id)
			}
		}
		slices.SortFunc(want, func(a, b string) int {
			return cmp.Or(cmp.Compare(model[a].sub, model[b].sub), cmp.Compare(model[a].seq, model[b].seq))
		})
		if got := c.history(); !slices.Equal(got, want) {
			t.Fatalf("step %d: history differs from the model (%d vs %d ids)", step, len(got), len(want))
		}
	}
}

// TestCatalogFreesStale checks that drops and submitted changes free their
// history items without History being called, as on a long-running hub
// whose retention drops records nobody lists.
func TestCatalogFreesStale(t *testing.T) {
	c := newCatalog()
	const live = 10
	for i := range 10_000 {
		c.add(entry{id: fmt.Sprint(i), sub: int64(i)})
		c.setSubmitted(fmt.Sprint(i), int64(i)+1)
		if i >= live {
			c.drop(fmt.Sprint(i - live))
		}
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	if n := len(c.hist); n > 2*live {
		t.Fatalf("history holds %d items for %d live records", n, live)
	}
	if got := c.history(); len(got) != live {
		t.Fatalf("history: %d ids, want %d", len(got), live)
	}
}
