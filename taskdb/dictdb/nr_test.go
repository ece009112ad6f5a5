package dictdb

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb/dbtest"
)

func BenchmarkThaw(b *testing.B) {
	w := dbtest.NewWorkload()
	r, _ := newRec(w.ID(0), w.Record(0))
	var t thawer
	n := 0
	for b.Loop() {
		d := r.thawAll(&t)
		n += len(d)
		if n%1000 == 0 {
			t = thawer{}
		}
	}
}
func BenchmarkLayout(b *testing.B) {
	w := dbtest.NewWorkload()
	r, _ := newRec(w.ID(0), w.Record(0))
	for b.Loop() {
		r.layout()
	}
}
