package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/go-zeromq/zmq4"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// ZMTP 3.x framing constants (https://rfc.zeromq.org/spec/23/).
const (
	greetingLen = 64

	flagMore     = 0x01
	flagLong     = 0x02
	flagCommand  = 0x04
	flagReserved = 0xf8

	// maxCommand bounds the body of one command frame. Commands are
	// handshake metadata (READY) and heartbeats, a few hundred bytes;
	// the bound keeps a whole handshake inside one read buffer.
	maxCommand = 8 << 10

	// maxFrames bounds the frames of one message: zmq4 keeps a slice
	// header per frame, so empty frames would otherwise cost memory
	// without counting against MaxMessageSize.
	maxFrames = 1 << 16
)

// nullGreeting is the greeting zmq4 sends with NULL security: signature,
// version 3.0, mechanism "NULL", as-server 0. The listener sends it on
// zmq4's behalf before zmq4 sees the connection.
var nullGreeting = func() [greetingLen]byte {
	var g [greetingLen]byte
	g[0], g[9], g[10] = 0xff, 0x7f, 3
	copy(g[12:32], "NULL")
	return g
}()

// Reasons a stream is rejected. They are wrapped with details.
var (
	errGreeting  = errors.New("invalid greeting")
	errMechanism = errors.New("unsupported security mechanism (only NULL)")
	errFlags     = errors.New("invalid frame flags")
	errFrameSize = errors.New("frame too large")
	errMsgSize   = errors.New("message too large")
	errCommand   = errors.New("invalid command")
	errHandshake = errors.New("handshake violation")
)

// Parser states.
const (
	stGreeting = iota // collecting the 64-byte greeting
	stFlags           // expecting the flags byte of a frame
	stSize            // collecting a 1- or 8-byte frame size
	stCommand         // collecting a command body
	stBody            // skipping a message frame body
)

// stream follows one direction of a ZMTP 3.x connection with the NULL
// mechanism, a few bytes at a time, without ever holding a message body.
// It validates everything zmq4 would otherwise trust: the greeting, the
// READY command that must come first, command encodings and, when limits
// are set, frame and message sizes. A stream is not safe for concurrent use.
type stream struct {
	maxFrame int64 // 0: unlimited
	maxMsg   int64 // 0: unlimited, and no maxFrames either

	state    int
	buf      []byte // greeting, size or command bytes being collected
	need     int    // bytes still missing from buf
	flags    byte   // flags of the current frame
	left     int64  // body bytes of the current frame still to come
	msg      int64  // bytes of the current message so far
	frames   int    // frames of the current message so far
	more     bool   // inside a multipart message
	ready    bool   // READY received
	sockType string // Socket-Type property of the READY
	err      error  // sticky: once rejected, always rejected
}

func newStream(maxFrame, maxMsg int64) *stream {
	return &stream{
		maxFrame: maxFrame,
		maxMsg:   maxMsg,
		state:    stGreeting,
		buf:      make([]byte, 0, greetingLen),
		need:     greetingLen,
	}
}

// boundary reports whether the stream sits between messages: the greeting
// and every command and final frame end on a boundary.
func (s *stream) boundary() bool {
	return s.err == nil && s.state == stFlags && !s.more
}

// feed advances the stream over b. It returns the first violation found;
// after one, the stream rejects all further input.
func (s *stream) feed(b []byte) error {
	for len(b) > 0 && s.err == nil {
		switch s.state {
		case stBody:
			n := min(int64(len(b)), s.left)
			b = b[n:]
			s.left -= n
			if s.left == 0 {
				s.endFrame()
			}
		case stFlags:
			s.flags = b[0]
			b = b[1:]
			s.err = s.startFrame()
		default: // stGreeting, stSize, stCommand: collect s.need bytes
			n := min(s.need, len(b))
			s.buf = append(s.buf, b[:n]...)
			b = b[n:]
			s.need -= n
			if s.need == 0 {
				s.err = s.collected()
			}
		}
	}
	return s.err
}

func (s *stream) startFrame() error {
	fl := s.flags
	switch {
	case fl&flagReserved != 0:
		return fmt.Errorf("%w: %#02x", errFlags, fl)
	case fl&flagCommand != 0 && (fl&flagMore != 0 || s.more):
		return fmt.Errorf("%w: command inside a multipart message", errFlags)
	case fl&flagCommand == 0 && !s.ready:
		return fmt.Errorf("%w: message frame before READY", errHandshake)
	}
	s.state, s.buf, s.need = stSize, s.buf[:0], 1
	if fl&flagLong != 0 {
		s.need = 8
	}
	return nil
}

// collected handles a completed greeting, size or command.
func (s *stream) collected() error {
	switch s.state {
	case stGreeting:
		if err := checkGreeting(s.buf); err != nil {
			return err
		}
		s.state = stFlags
		return nil
	case stSize:
		return s.sized()
	default: // stCommand
		if err := s.command(s.buf); err != nil {
			return err
		}
		s.endFrame()
		return nil
	}
}

func (s *stream) sized() error {
	var size uint64
	if len(s.buf) == 8 {
		size = binary.BigEndian.Uint64(s.buf)
	} else {
		size = uint64(s.buf[0])
	}
	if size > math.MaxInt64 || (s.maxFrame > 0 && int64(size) > s.maxFrame) {
		return fmt.Errorf("%w: %d bytes (limit %d)", errFrameSize, size, s.maxFrame)
	}
	n := int64(size)
	if s.flags&flagCommand != 0 {
		if n > maxCommand {
			return fmt.Errorf("%w: %d-byte command (limit %d)", errFrameSize, n, maxCommand)
		}
		s.state, s.buf, s.need = stCommand, s.buf[:0], int(n)
		if n == 0 {
			return s.collected()
		}
		return nil
	}
	if s.maxMsg > 0 && n > s.maxMsg-s.msg {
		return fmt.Errorf("%w: more than %d bytes", errMsgSize, s.maxMsg)
	}
	if s.frames++; s.maxMsg > 0 && s.frames > maxFrames {
		return fmt.Errorf("%w: more than %d frames", errMsgSize, maxFrames)
	}
	s.msg += n
	s.state, s.left = stBody, n
	if n == 0 {
		s.endFrame()
	}
	return nil
}

func (s *stream) endFrame() {
	s.state = stFlags
	s.more = s.flags&flagMore != 0
	if !s.more {
		s.msg, s.frames = 0, 0
	}
}

// command checks a command body: a name, then a body that READY
// constrains to a property list. READY must come first and only once.
func (s *stream) command(b []byte) error {
	if len(b) == 0 || b[0] == 0 || int(b[0]) > len(b)-1 {
		return fmt.Errorf("%w: bad name length", errCommand)
	}
	name, body := string(b[1:1+b[0]]), b[1+b[0]:]
	switch {
	case !s.ready && name != "READY":
		return fmt.Errorf("%w: %q before READY", errHandshake, name)
	case s.ready && name == "READY":
		return fmt.Errorf("%w: second READY", errHandshake)
	case name == "READY":
		typ, err := readyType(body)
		if err != nil {
			return err
		}
		s.ready, s.sockType = true, typ
	}
	return nil
}

// checkGreeting validates a ZMTP 3.x greeting for the NULL mechanism.
func checkGreeting(g []byte) error {
	switch {
	case g[0] != 0xff || g[9] != 0x7f:
		return fmt.Errorf("%w: bad signature", errGreeting)
	case g[10] < 3:
		return fmt.Errorf("%w: ZMTP version %d.%d, need 3.x", errGreeting, g[10], g[11])
	case !bytes.Equal(g[12:32], nullGreeting[12:32]):
		return fmt.Errorf("%w: %q", errMechanism, bytes.TrimRight(g[12:32], "\x00"))
	case g[32] != 0:
		return fmt.Errorf("%w: as-server set with NULL", errGreeting)
	}
	return nil
}

// readyType parses READY properties (name-length, name, 4-byte
// value-length, value; repeated to the end) and returns Socket-Type.
func readyType(p []byte) (string, error) {
	var typ string
	for len(p) > 0 {
		nl := int(p[0])
		if nl == 0 || len(p) < 1+nl+4 {
			return "", fmt.Errorf("%w: truncated READY property", errCommand)
		}
		name := string(p[1 : 1+nl])
		vl := binary.BigEndian.Uint32(p[1+nl:])
		p = p[1+nl+4:]
		if uint64(vl) > uint64(len(p)) {
			return "", fmt.Errorf("%w: READY property %q overruns the command", errCommand, name)
		}
		if propertyKey(name) == "Socket-Type" {
			typ = string(p[:vl])
		}
		p = p[vl:]
	}
	switch zmq4.SocketType(typ) {
	case zmq4.Pair, zmq4.Pub, zmq4.Sub, zmq4.Req, zmq4.Rep, zmq4.Dealer,
		zmq4.Router, zmq4.Pull, zmq4.Push, zmq4.XPub, zmq4.XSub:
		return typ, nil
	case "":
		return "", fmt.Errorf("%w: READY without Socket-Type", errCommand)
	default: // zmq4 panics on a type it does not know
		return "", fmt.Errorf("%w: unsupported Socket-Type %q", errCommand, typ)
	}
}

// propertyKey is the key under which zmq4 stores a READY property: it
// title-cases names without lowering, so "socket-type" counts as
// Socket-Type but "SoCket-TYpe" does not.
func propertyKey(name string) string {
	return cases.Title(language.Und, cases.NoLower).String(name)
}
