package wire

import (
	"errors"
	"fmt"
	"time"
)

// Delimiter separates the routing identities from the signed message.
const Delimiter = "<IDS|MSG>"

// ProtocolVersion is the Jupyter message protocol version sent in headers.
const ProtocolVersion = "5.3"

// Errors returned by Decode and NewSession. Callers test them with errors.Is.
var (
	// ErrMalformed: no delimiter, fewer than 5 frames after it, or a frame
	// that does not unpack to what the protocol requires (see FrameError).
	ErrMalformed = errors.New("wire: malformed message")
	// ErrUnsigned: the session has a key and the signature frame is empty.
	ErrUnsigned = errors.New("wire: unsigned message")
	// ErrBadSignature: the signature does not match the four packed frames.
	ErrBadSignature = errors.New("wire: invalid signature")
	// ErrReplayed: the signature verified but was seen before.
	ErrReplayed = errors.New("wire: duplicate signature")
	// ErrUnknownScheme: the signature scheme is not one of the supported ones.
	ErrUnknownScheme = errors.New("wire: unknown signature scheme")
)

// FrameError reports a signed frame that could not be unpacked. Frame is
// "header", "parent_header", "metadata" or "content". It matches
// ErrMalformed with errors.Is.
type FrameError struct {
	Frame string
	Err   error
}

func (e *FrameError) Error() string { return "wire: bad " + e.Frame + " frame: " + e.Err.Error() }

// Unwrap returns ErrMalformed and the underlying cause.
func (e *FrameError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

// Header is a message header. A zero Date means the field is absent. A zero
// Header packs as {}, the empty parent of a message that answers nothing.
type Header struct {
	MsgID    string
	MsgType  string
	Username string
	Session  string
	Date     time.Time
	Version  string
}

// IsZero reports whether h is the empty header.
func (h Header) IsZero() bool { return h == Header{} }

// Map returns h in document form for task records: all six keys, with date
// as a time.Time (nil when zero). A zero Header gives an empty map.
func (h Header) Map() map[string]any {
	if h.IsZero() {
		return map[string]any{}
	}
	var date any
	if !h.Date.IsZero() {
		date = h.Date
	}
	return map[string]any{
		"msg_id":   h.MsgID,
		"msg_type": h.MsgType,
		"username": h.Username,
		"session":  h.Session,
		"date":     date,
		"version":  h.Version,
	}
}

// HeaderFromMap builds a Header from its document form, as Map returns it
// or as a packer unpacks it. Missing keys stay zero; unknown keys are
// ignored. The date may be a time.Time or a string ParseDate accepts. A
// field of the wrong type is an error wrapping ErrMalformed.
func HeaderFromMap(m map[string]any) (Header, error) {
	var h Header
	for k, v := range m {
		if k == "date" {
			switch d := v.(type) {
			case nil:
			case time.Time:
				h.Date = d.UTC()
			case string:
				t, ok := ParseDate(d)
				if !ok {
					return Header{}, errHeaderDate(d)
				}
				h.Date = t
			default:
				return Header{}, errHeaderType(k, v)
			}
			continue
		}
		i := headerField(k)
		if i < 0 {
			continue
		}
		switch v := v.(type) {
		case nil:
		case string:
			*h.fields()[i] = v
		default:
			return Header{}, errHeaderType(k, v)
		}
	}
	return h, nil
}

// headerKeys names the string fields of a Header, in fields order.
var headerKeys = [5]string{"msg_id", "msg_type", "username", "session", "version"}

// fields returns pointers to the string fields of h, in headerKeys order.
func (h *Header) fields() [5]*string {
	return [5]*string{&h.MsgID, &h.MsgType, &h.Username, &h.Session, &h.Version}
}

// headerField returns the index in headerKeys of k, or -1.
func headerField[S string | []byte](k S) int {
	for i, name := range headerKeys {
		if string(k) == name {
			return i
		}
	}
	return -1
}

func errHeaderDate(d string) error {
	return fmt.Errorf("%w: header date %q is not an ISO 8601 date", ErrMalformed, d)
}

func errHeaderType(k string, v any) error {
	return fmt.Errorf("%w: header %s is %T", ErrMalformed, k, v)
}

// Message is a decoded or outgoing message.
type Message struct {
	// Identities are the routing frames before the delimiter.
	Identities [][]byte
	Header     Header
	Parent     Header
	Metadata   map[string]any
	Content    map[string]any
	// Buffers are the unsigned trailing frames. Decode slices them from the
	// received frames without copying.
	Buffers [][]byte
	// Raw is set by Decode: every frame exactly as received (identities,
	// delimiter, signature, the 4 packed frames, buffers), so a router can
	// relay the message verbatim, with other identities, without re-packing
	// or re-signing. Encode ignores it.
	Raw [][]byte
}

// Error is the content of every error reply:
//
//	{status: "error", ename, evalue, traceback: [...], engine_info: {}}
//
// Name and Value are sent; Err is the cause, for the log only.
type Error struct {
	Name      string   // ename, stable: "KeyError", "IndexError", "InternalError"...
	Value     string   // evalue, for humans
	Traceback []string // sent as is; nil is sent as []
	Err       error
}

func (e *Error) Error() string { return e.Name + ": " + e.Value }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Content returns the reply content for e. engine_info is always empty: a
// non-empty one must name an engine the client knows.
func (e *Error) Content() map[string]any {
	tb := make([]any, len(e.Traceback))
	for i, s := range e.Traceback {
		tb[i] = s
	}
	return map[string]any{
		"status":      "error",
		"ename":       e.Name,
		"evalue":      e.Value,
		"traceback":   tb,
		"engine_info": map[string]any{},
	}
}
