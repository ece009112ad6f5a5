package wire

import (
	"crypto/hmac"
	"crypto/sha512"
	"errors"
	"fmt"
	"sync"
)

// packer turns values into one frame and back.
type packer interface {
	packName() string
	unpackName() string
	// appendPack appends the packed form of v to dst.
	appendPack(dst []byte, v any) ([]byte, error)
	// unpack decodes one whole frame into the value model.
	unpack(b []byte) (any, error)
	// unpackHeader decodes a header frame as HeaderFromMap(unpack(b))
	// would, or faster.
	unpackHeader(b []byte) (Header, error)
}

// maxDepth bounds the nesting of packed values, in both directions, so a
// hostile frame cannot exhaust the stack.
const maxDepth = 10000

var (
	errTooDeep = errors.New("nested too deeply")
	errNotMap  = errors.New("not a map")
)

// dateKeys are the top-level metadata keys Decode turns into time.Time.
var dateKeys = [...]string{"started", "completed", "date", "submitted", "received"}

// scratch holds packing buffers; ones grown past maxScratch by a large
// message are left to the garbage collector.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxScratch = 64 << 10

// Encode returns the frames of m: identities, delimiter, signature, the 4
// packed frames (header, parent, metadata, content) and buffers. It signs
// when the session has a key. Identities and buffers are not copied. Nil
// metadata or content are sent as {}. Encode fails when a value cannot be
// packed (see the package doc); m.Raw is ignored.
func (s *Session) Encode(m *Message) ([][]byte, error) {
	sp := scratch.Get().(*[]byte)
	buf := (*sp)[:0]
	defer func() {
		if cap(buf) <= maxScratch {
			*sp = buf
			scratch.Put(sp)
		}
	}()
	var ends [4]int
	var err error
	for i, v := range [4]any{&m.Header, &m.Parent, m.Metadata, m.Content} {
		if buf, err = s.packer.appendPack(buf, v); err != nil {
			return nil, fmt.Errorf("wire: pack %s: %w", frameNames[i], err)
		}
		ends[i] = len(buf)
	}

	// One allocation holds the delimiter, the signature and the 4 frames.
	data := make([]byte, s.prefixLen()+len(buf))
	body := data[s.prefixLen():]
	copy(body, buf)
	var parts [4][]byte
	start := 0
	for i, end := range ends {
		parts[i] = body[start:end:end]
		start = end
	}
	return s.frame(data, m.Identities, parts, m.Buffers), nil
}

// EncodePacked returns the frames of a message whose header,
// parent_header, metadata and content are already packed (by Pack, or as
// received), in that order: identities, delimiter, signature (when the
// session has a key), the 4 packed frames and buffers, as Encode does. It
// lets a sender that varies a few fields of a pre-packed message skip
// packing. Nothing is checked or copied.
func (s *Session) EncodePacked(identities [][]byte, packed [4][]byte, buffers [][]byte) [][]byte {
	return s.frame(make([]byte, s.prefixLen()), identities, packed, buffers)
}

// prefixLen is the size of the delimiter and signature frames.
func (s *Session) prefixLen() int { return len(Delimiter) + 2*s.macSize }

// frame writes the delimiter and the signature of parts into
// prefix[:prefixLen] and returns the message's frames.
func (s *Session) frame(prefix []byte, identities [][]byte, parts [4][]byte, buffers [][]byte) [][]byte {
	const dl = len(Delimiter)
	sl := 2 * s.macSize
	copy(prefix, Delimiter)
	if sl > 0 {
		s.sign(prefix[dl:dl+sl], parts[:])
	}
	frames := make([][]byte, 0, len(identities)+6+len(buffers))
	frames = append(frames, identities...)
	frames = append(frames, prefix[:dl:dl], prefix[dl:dl+sl:dl+sl])
	frames = append(frames, parts[:]...)
	frames = append(frames, buffers...)
	return frames
}

var frameNames = [4]string{"header", "parent_header", "metadata", "content"}

// Decode parses frames received from a socket. It splits them at the first
// delimiter, verifies the signature over the 4 packed frames exactly as
// received (in constant time), rejects a signature seen before, and
// unpacks. A signature is remembered only once it has verified, so a
// tampered copy cannot make the genuine message look replayed.
//
// Errors: ErrMalformed (no delimiter, fewer than 5 frames after it),
// ErrUnsigned, ErrBadSignature, ErrReplayed, or a *FrameError naming the
// frame that did not unpack (it matches ErrMalformed). With an empty key
// nothing is checked.
//
// The returned message keeps references into frames: Identities, Buffers
// (nil when there are none) and Raw are sub-slices of it, nothing is
// copied.
func (s *Session) Decode(frames [][]byte) (*Message, error) {
	m, err := s.DecodeHeaders(frames)
	if err != nil {
		return nil, err
	}
	packed := frames[len(m.Identities)+1:]
	if m.Metadata, err = s.unpackMap(packed[3], 2); err != nil {
		return nil, err
	}
	for _, k := range dateKeys {
		if v, ok := m.Metadata[k].(string); ok {
			if t, ok := ParseDate(v); ok {
				m.Metadata[k] = t
			}
		}
	}
	if m.Content, err = s.unpackMap(packed[4], 3); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeHeaders checks frames as Decode does (delimiter, signature,
// replay) but unpacks only the header and parent_header: Metadata and
// Content stay nil. It is for receivers that route or match messages by
// their headers; Raw still holds the metadata and content frames, which
// Unpack reads when needed. Errors as for Decode.
func (s *Session) DecodeHeaders(frames [][]byte) (*Message, error) {
	i := 0
	for i < len(frames) && string(frames[i]) != Delimiter {
		i++
	}
	if i == len(frames) {
		return nil, fmt.Errorf("%w: no delimiter", ErrMalformed)
	}
	rest := frames[i+1:]
	if len(rest) < 5 {
		return nil, fmt.Errorf("%w: %d frames after the delimiter, want at least 5", ErrMalformed, len(rest))
	}
	if s.macSize > 0 {
		sig := rest[0]
		if len(sig) == 0 {
			return nil, ErrUnsigned
		}
		var want [2 * sha512.Size]byte
		digest := s.sign(want[:], rest[1:5])
		if !hmac.Equal(sig, want[:2*s.macSize]) {
			return nil, ErrBadSignature
		}
		if s.replay != nil && !s.replay.add(digest) {
			return nil, ErrReplayed
		}
	}
	m := &Message{
		Identities: frames[:i:i],
		Raw:        frames,
	}
	if len(rest) > 5 {
		m.Buffers = rest[5:]
	}
	var err error
	if m.Header, err = s.unpackHeader(rest[1], 0); err != nil {
		return nil, err
	}
	if m.Parent, err = s.unpackHeader(rest[2], 1); err != nil {
		return nil, err
	}
	return m, nil
}

func (s *Session) unpackMap(b []byte, frame int) (map[string]any, error) {
	v, err := s.packer.unpack(b)
	if err != nil {
		return nil, &FrameError{Frame: frameNames[frame], Err: err}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &FrameError{Frame: frameNames[frame], Err: errNotMap}
	}
	return m, nil
}

func (s *Session) unpackHeader(b []byte, frame int) (Header, error) {
	h, err := s.packer.unpackHeader(b)
	if err != nil {
		return Header{}, &FrameError{Frame: frameNames[frame], Err: err}
	}
	return h, nil
}

// Pack packs v with the session's packer, as one frame. It accepts the
// same values as Encode.
func (s *Session) Pack(v any) ([]byte, error) {
	b, err := s.packer.appendPack(nil, v)
	if err != nil {
		return nil, fmt.Errorf("wire: pack: %w", err)
	}
	return b, nil
}

// UnpackHeader unpacks a header frame as Decode does, without verifying
// anything: for a receiver that only peeks at a message it relays
// unchanged. Errors wrap ErrMalformed.
func (s *Session) UnpackHeader(b []byte) (Header, error) {
	return s.unpackHeader(b, 0)
}

// Unpack unpacks one frame that must hold a map, into the value model. It
// converts no dates. Errors wrap ErrMalformed.
func (s *Session) Unpack(b []byte) (map[string]any, error) {
	v, err := s.packer.unpack(b)
	if err == nil {
		if m, ok := v.(map[string]any); ok {
			return m, nil
		}
		err = errNotMap
	}
	return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
}
