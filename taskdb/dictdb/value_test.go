package dictdb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
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
