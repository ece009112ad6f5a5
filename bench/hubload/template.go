package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/taskhub/taskhub/wire"
)

// The hot paths of the fake engines and clients send messages that differ
// only in their msg_id and dates. Each is packed once as a template with
// placeholders; a message copies the template and writes the new values
// over the placeholders, which keeps every frame a valid packing (both
// packers store these strings verbatim), then EncodePacked signs it.

// datePlaceholder holds the place of a date (a stamp) in a template.
var datePlaceholder = wire.FormatDate(time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC))

// template is a packed frame with placeholders.
type template struct {
	b  []byte
	at []int // offset of each placeholder, in fill's order
}

// newTemplate packs v and finds each placeholder (which must occur once)
// in the result.
func newTemplate(s *wire.Session, v any, placeholders ...string) (*template, error) {
	b, err := s.Pack(v)
	if err != nil {
		return nil, err
	}
	t := &template{b: b}
	for _, p := range placeholders {
		i := bytes.Index(b, []byte(p))
		if i < 0 || bytes.Contains(b[i+1:], []byte(p)) {
			return nil, fmt.Errorf("template %q: placeholder %q is not there once", b, p)
		}
		t.at = append(t.at, i)
	}
	return t, nil
}

// fill returns a copy of the template with values written over the
// placeholders; each value must be as long as its placeholder.
func (t *template) fill(values ...[]byte) []byte {
	b := bytes.Clone(t.b)
	for i, v := range values {
		copy(b[t.at[i]:], v)
	}
	return b
}

// headerTemplate packs the header of a message of type msgType from s
// with placeholders for its msg_id (from ids) and date.
func headerTemplate(s *wire.Session, ids *idGen, msgType string) (*template, error) {
	date, _ := wire.ParseDate(datePlaceholder)
	h := wire.Header{MsgID: ids.placeholder(), MsgType: msgType, Username: s.Username(), Session: s.ID(),
		Date: date, Version: wire.ProtocolVersion}
	return newTemplate(s, &h, h.MsgID, datePlaceholder)
}

// idGen makes msg_ids unique across sessions (and processes), all of one
// length: the session id, "_" and a 12-digit hex counter, as
// jupyter_client's are <session>_<pid>_<n>.
type idGen struct {
	prefix string
	n      uint64
}

const counterDigits = 12

func newIDGen(s *wire.Session) *idGen { return &idGen{prefix: s.ID() + "_"} }

// placeholder is as long as the ids.
func (g *idGen) placeholder() string { return strings.Repeat("#", len(g.prefix)+counterDigits) }

func (g *idGen) next() []byte {
	g.n++
	b := make([]byte, 0, len(g.prefix)+counterDigits)
	b = append(b, g.prefix...)
	for range counterDigits - len(strconv.FormatUint(g.n, 16)) {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, g.n, 16)
}

// stamp returns the current time as a date as long as datePlaceholder:
// with a fraction (a date on a whole second, which FormatDate writes
// without one, moves by a microsecond).
func stamp() []byte {
	t := time.Now().UTC()
	if t.Nanosecond() < 1000 {
		t = t.Add(time.Microsecond)
	}
	return []byte(wire.FormatDate(t))
}
