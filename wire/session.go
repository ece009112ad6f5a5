package wire

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
)

// DefaultReplayHistory is the number of signatures a Session remembers
// when Config.ReplayHistory is 0, as jupyter_client's digest_history_size.
const DefaultReplayHistory = 1 << 16

// Config configures a Session. The zero value is an unsigned msgpack
// session with a generated id.
type Config struct {
	// Key signs and verifies messages. Empty: messages are sent unsigned
	// and nothing is checked.
	Key []byte
	// SignatureScheme is "hmac-sha256" (default), "hmac-sha1",
	// "hmac-sha512" or "hmac-md5".
	SignatureScheme string
	// Packer is "msgpack" (default) or "json".
	Packer string
	// ReplayHistory is how many verified signatures are remembered to
	// reject replays. 0 means DefaultReplayHistory; negative disables the
	// check, for a session that must accept relayed copies of messages it
	// has already decoded.
	ReplayHistory int
	// Username fills header.username. Default: $USER, else "username".
	Username string
	// SessionID fills header.session. Default: a new id shaped like
	// jupyter_client's new_id (8 hex, "-", 24 hex).
	SessionID string
}

// A Session encodes and decodes messages with one key, signature scheme and
// packer. It is safe for concurrent use by several goroutines, which share
// its replay history.
type Session struct {
	id       string
	username string
	scheme   string
	key      []byte
	macs     sync.Pool // of hash.Hash keyed with key; unused when key is empty
	macSize  int
	packer   packer
	replay   *history // nil: no replay check
}

var schemes = map[string]func() hash.Hash{
	"hmac-sha256": sha256.New,
	"hmac-sha1":   sha1.New,
	"hmac-sha512": sha512.New,
	"hmac-md5":    md5.New,
}

// NewSession returns a Session for cfg. It fails with ErrUnknownScheme for
// an unsupported signature scheme and with an error naming the packer for
// an unknown packer.
func NewSession(cfg Config) (*Session, error) {
	if cfg.SignatureScheme == "" {
		cfg.SignatureScheme = "hmac-sha256"
	}
	newHash, ok := schemes[cfg.SignatureScheme]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownScheme, cfg.SignatureScheme)
	}
	s := &Session{
		id:       cfg.SessionID,
		username: cfg.Username,
		scheme:   cfg.SignatureScheme,
		key:      append([]byte(nil), cfg.Key...),
	}
	switch cfg.Packer {
	case "", "msgpack":
		s.packer = msgpackPacker{}
	case "json":
		s.packer = jsonPacker{}
	default:
		return nil, fmt.Errorf("wire: unknown packer %q (want msgpack or json)", cfg.Packer)
	}
	if s.id == "" {
		s.id = newID()
	}
	if s.username == "" {
		s.username = os.Getenv("USER")
	}
	if s.username == "" {
		s.username = "username"
	}
	if len(s.key) > 0 {
		key := s.key
		s.macs.New = func() any { return hmac.New(newHash, key) }
		s.macSize = newHash().Size()
		switch {
		case cfg.ReplayHistory == 0:
			s.replay = newHistory(DefaultReplayHistory)
		case cfg.ReplayHistory > 0:
			s.replay = newHistory(cfg.ReplayHistory)
		}
	}
	return s, nil
}

// newID returns an id shaped like jupyter_client's new_id: 8 hex digits,
// "-", 24 hex digits, from a random uuid.
func newID() string {
	u := uuid.New()
	var b [33]byte
	hex.Encode(b[:8], u[:4])
	b[8] = '-'
	hex.Encode(b[9:], u[4:])
	return string(b[:])
}

// ID returns the session id sent in header.session.
func (s *Session) ID() string { return s.id }

// Username returns the name sent in header.username.
func (s *Session) Username() string { return s.username }

// PackName returns the packer's name for the "pack" key of connection
// files: "json" or "msgpack.packb".
func (s *Session) PackName() string { return s.packer.packName() }

// UnpackName returns the unpacker's name for the "unpack" key of
// connection files: "json" or "msgpack.unpackb".
func (s *Session) UnpackName() string { return s.packer.unpackName() }

// SignatureScheme returns the scheme for the "signature_scheme" key of
// connection files.
func (s *Session) SignatureScheme() string { return s.scheme }

// NewMessage returns a message of type msgType with a new header: a random
// uuid msg_id, the session's username and id, the current UTC date to the
// microsecond and version ProtocolVersion. parent may be nil. A nil content
// becomes an empty map; metadata starts empty.
func (s *Session) NewMessage(msgType string, content map[string]any, parent *Header) *Message {
	if content == nil {
		content = map[string]any{}
	}
	m := &Message{
		Header: Header{
			MsgID:    uuid.NewString(),
			MsgType:  msgType,
			Username: s.username,
			Session:  s.id,
			Date:     time.Now().UTC().Truncate(time.Microsecond),
			Version:  ProtocolVersion,
		},
		Metadata: map[string]any{},
		Content:  content,
	}
	if parent != nil {
		m.Parent = *parent
	}
	return m
}

// sign writes the lowercase hex HMAC of parts into dst, which must have
// room for 2*s.macSize bytes, and returns the raw digest.
func (s *Session) sign(dst []byte, parts [][]byte) []byte {
	mac := s.macs.Get().(hash.Hash)
	mac.Reset()
	for _, p := range parts {
		mac.Write(p)
	}
	var sum [sha512.Size]byte
	d := mac.Sum(sum[:0])
	s.macs.Put(mac)
	hex.Encode(dst, d)
	return d
}

// history remembers the most recent verified digests, oldest evicted first.
// It keys on the first 16 bytes of each digest: a false duplicate would
// need a 128-bit HMAC collision, which nobody without the key can produce.
type history struct {
	mu   sync.Mutex // guards all below
	seen map[[16]byte]struct{}
	ring [][16]byte // insertion order; next is the slot to overwrite
	next int
	full bool
}

func newHistory(n int) *history {
	return &history{seen: make(map[[16]byte]struct{}, n), ring: make([][16]byte, n)}
}

// add records digest and reports whether it was new.
func (h *history) add(digest []byte) bool {
	var k [16]byte
	copy(k[:], digest)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, dup := h.seen[k]; dup {
		return false
	}
	if h.full {
		delete(h.seen, h.ring[h.next])
	}
	h.ring[h.next] = k
	h.seen[k] = struct{}{}
	h.next++
	if h.next == len(h.ring) {
		h.next, h.full = 0, true
	}
	return true
}
