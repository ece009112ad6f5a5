package chunk

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/taskhub/taskhub/taskdb"
)

// TestBoxLayout checks that the runtime lays interfaces out as box
// assumes: a value boxed by the runtime and by box read back the same
// through type switches, reflection and formatting.
func TestBoxLayout(t *testing.T) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	doc := taskdb.Doc{{Key: "a", Value: int64(1)}}
	arr := []any{"x", int64(2)}
	var a Alloc
	for _, c := range []struct{ want, got any }{
		{"hello", a.BoxString("hello")},
		{"", a.BoxString("")},
		{now, a.BoxTime(now)},
		{doc, a.BoxDoc(doc)},
		{taskdb.Doc(nil), a.BoxDoc(nil)},
		{arr, a.BoxArray(arr)},
		{[]byte("xyz"), a.BoxBytes([]byte("xyz"))},
	} {
		if reflect.TypeOf(c.got) != reflect.TypeOf(c.want) || !reflect.DeepEqual(c.got, c.want) ||
			fmt.Sprintf("%#v", c.got) != fmt.Sprintf("%#v", c.want) {
			t.Errorf("boxed %#v reads back as %#v", c.want, c.got)
		}
	}
	if s, ok := a.BoxString("s").(string); !ok || s != "s" {
		t.Errorf("type assertion: %q, %v", s, ok)
	}
	if tm, ok := a.BoxTime(now).(time.Time); !ok || !tm.Equal(now) {
		t.Errorf("type assertion: %v, %v", tm, ok)
	}
	if a.BoxString("a") != any("a") || a.BoxTime(now) != any(now) {
		t.Error("a boxed value compares unequal to the runtime's")
	}
}

// TestBoxSurvivesCollection checks that boxed values keep their chunks
// alive once the Alloc is gone, planned chunks included.
func TestBoxSurvivesCollection(t *testing.T) {
	var vals []any
	func() {
		var a Alloc
		for i := range 2000 {
			vals = append(vals, a.BoxString(fmt.Sprint("s", i)), a.BoxDoc(taskdb.Doc{{Key: fmt.Sprint(i)}}))
			if i == 0 {
				a.Plan(1, 1999)
			}
		}
	}()
	runtime.GC()
	runtime.GC()
	garbage := make([][]byte, 0, 1000)
	for range 1000 {
		garbage = append(garbage, make([]byte, 1024))
	}
	runtime.KeepAlive(garbage)
	for i := range 2000 {
		if s := vals[2*i].(string); s != fmt.Sprint("s", i) {
			t.Fatalf("string %d = %q", i, s)
		}
		if d := vals[2*i+1].(taskdb.Doc); len(d) != 1 || d[0].Key != fmt.Sprint(i) {
			t.Fatalf("doc %d = %v", i, d)
		}
	}
}

func BenchmarkBoxString(b *testing.B) {
	var a Alloc
	sink := a.BoxString("first")
	a.Plan(1, 1<<20)
	for b.Loop() {
		sink = a.BoxString("hello")
	}
	_ = sink
}
