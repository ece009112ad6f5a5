package dictdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/taskhub/taskhub/taskdb"
)

func TestBlobs(t *testing.T) {
	long := bytes.Repeat([]byte{7}, 300) // a two-byte length
	for _, c := range []struct {
		in   any
		want [][]byte // nil: not packed
	}{
		{[]any{[]byte("abc")}, [][]byte{[]byte("abc")}},
		{[]any{[]byte{}, []byte(nil), long, []byte("x")}, [][]byte{{}, {}, long, []byte("x")}},
		{[][]byte{[]byte("a"), nil}, [][]byte{[]byte("a"), {}}},
		{[]any{}, nil},
		{[][]byte{}, nil},
		{[]any{[]byte("a"), "b"}, nil},
		{[]any{[]any{[]byte("a")}}, nil},
		{[]byte("a"), nil},
		{nil, nil},
	} {
		t.Run(fmt.Sprintf("%#v", c.in), func(t *testing.T) {
			b, ok := packBlobs(c.in)
			if ok != (c.want != nil) {
				t.Fatalf("packed = %v, want %v", ok, c.want != nil)
			}
			if !ok {
				return
			}
			n := 0
			for _, w := range c.want {
				n += len(w) + len(binary.AppendUvarint(nil, uint64(len(w))))
			}
			if len(b) != n || cap(b) != n {
				t.Errorf("len %d cap %d, want %d", len(b), cap(b), n)
			}
			list := b.list()
			if b.count() != len(c.want) || len(list) != len(c.want) || bufferBytes(b) != bufferBytes(list) {
				t.Fatalf("count %d, list %d, bufferBytes %d (list %d); want %d strings", b.count(), len(list), bufferBytes(b), bufferBytes(list), len(c.want))
			}
			var th thawer
			thawed := th.thaw(b).([]any)
			for i, w := range c.want {
				if !bytes.Equal(list[i].([]byte), w) || !bytes.Equal(thawed[i].([]byte), w) {
					t.Errorf("string %d: list %q, thawed %q, want %q", i, list[i], thawed[i], w)
				}
			}
		})
	}
}

// TestThawEmpty checks that empty values stay empty, not null, whether
// they come first or after planned chunks.
func TestThawEmpty(t *testing.T) {
	var th thawer
	for round := range 2 {
		if d := th.thaw(&doc{}).(taskdb.Doc); d == nil {
			t.Errorf("round %d: {} thawed to a null document", round)
		}
		if a := th.thaw([]any{}).([]any); a == nil {
			t.Errorf("round %d: [] thawed to null", round)
		}
		if b := th.thaw([]byte{}).([]byte); b == nil {
			t.Errorf("round %d: empty bytes thawed to null", round)
		}
		if d := th.thaw(new(doc)).(taskdb.Doc); d != nil {
			t.Errorf("round %d: null document thawed to %v", round, d)
		}
		th.thaw(&doc{{Key: "a", Value: []any{[]byte("x")}}})
		th.Plan(1, 10)
	}
}

// TestThawPlanned checks that results carved from planned chunks are
// independent: appending to one never reaches its neighbour.
func TestThawPlanned(t *testing.T) {
	var th thawer
	v := &doc{{Key: "a", Value: []any{[]byte("xy"), int64(1)}}, {Key: "b", Value: "s"}}
	var got []taskdb.Doc
	for i := range 50 {
		got = append(got, th.thaw(v).(taskdb.Doc))
		if i == 0 {
			th.Plan(1, 49)
		}
	}
	for i, d := range got {
		if len(d) != 2 || cap(d) != 2 {
			t.Fatalf("result %d: len %d cap %d, want 2 and 2", i, len(d), cap(d))
		}
		a := d[0].Value.([]any)
		if cap(a) != 2 || cap(a[0].([]byte)) != 2 {
			t.Fatalf("result %d: array cap %d, bytes cap %d, want 2", i, cap(a), cap(a[0].([]byte)))
		}
		_ = append(d, taskdb.Field{Key: "c"})
		_ = append(a[0].([]byte), 'z')
	}
	for i, d := range got {
		if fmt.Sprint(d) != "[{a [[120 121] 1]} {b s}]" {
			t.Fatalf("result %d = %v after appending to the others", i, d)
		}
	}
}

func TestNewDoc(t *testing.T) {
	for n := range 12 {
		var d *doc
		allocs := testing.AllocsPerRun(10, func() { d = newDoc(n) })
		if len(*d) != n || cap(*d) != n {
			t.Errorf("newDoc(%d): len %d cap %d", n, len(*d), cap(*d))
		}
		want := 1.0 // the header and fields together
		if n > len(fusedDocs)-1 {
			want = 2
		}
		if n > 0 && allocs != want {
			t.Errorf("newDoc(%d): %v allocations, want %v", n, allocs, want)
		}
	}
}
