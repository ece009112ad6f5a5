package dictdb

import (
	"testing"

	"github.com/taskhub/taskhub/taskdb"
)

// TestWords checks that every word is found, at its index, and that
// other strings are not.
func TestWords(t *testing.T) {
	for i, w := range words {
		j, ok := wordTable.index(w)
		if !ok || j != i {
			t.Errorf("word %d %q: got %d, %v", i, w, j, ok)
		}
	}
	for _, s := range []string{"x", "msg_i", "msg_idx", "apply_requesT", "6.0", "\x00", "okay"} {
		if j, ok := wordTable.index(s); ok {
			t.Errorf("%q found as word %d", s, j)
		}
	}
}

func TestSlotOf(t *testing.T) {
	for i, k := range taskdb.SchemaKeys {
		if got := slotOf(k); got != i {
			t.Errorf("slotOf(%q) = %d, want %d", k, got, i)
		}
	}
	for _, k := range []string{"", "x", "msg_idx", "Header", "stdout ", "display_data"} {
		if got := slotOf(k); got != extraSlot {
			t.Errorf("slotOf(%q) = %d, want extraSlot", k, got)
		}
	}
}
