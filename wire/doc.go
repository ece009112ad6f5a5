// Package wire implements the Jupyter message protocol v5.3 as ipyparallel
// 7.1 speaks it over ZeroMQ: framing, HMAC signing and verification, replay
// protection, the msgpack and JSON packers, and dates. It never touches a
// socket and imports nothing of ours.
//
// # Frames
//
// A message on the wire is
//
//	[identity…, "<IDS|MSG>", signature, header, parent_header, metadata, content, buffer…]
//
// Decode splits at the first delimiter, verifies the lowercase hex HMAC over
// the four packed frames exactly as received (constant time), rejects
// replayed signatures, and unpacks. Encode does the reverse. Buffers are not
// signed and are never copied. Message.Raw keeps the frames as received, so
// a router relays a message without re-packing or re-signing it.
//
// For hot paths: DecodeHeaders verifies like Decode but unpacks only the
// two headers, UnpackHeader peeks at a header frame without verifying, and
// EncodePacked signs frames packed beforehand (a template with a few
// fields changed per message).
//
// # Errors
//
// Decode returns ErrMalformed (no delimiter, fewer than 5 frames after it),
// ErrUnsigned, ErrBadSignature, ErrReplayed, or a *FrameError naming the
// frame that did not unpack (it matches ErrMalformed too). NewSession
// returns ErrUnknownScheme. Error is the content of every error reply.
//
// # Replay protection
//
// With a key, a Session remembers the last Config.ReplayHistory verified
// signatures (65,536 by default; the oldest is forgotten first) and rejects
// a message whose signature it has seen. A signature is remembered only
// after it verified, so a tampered copy of a message cannot make the
// genuine one look replayed, unlike jupyter_client.
//
// # Value model
//
// After Decode, metadata and content hold only these types, which the task
// database stores as they are:
//
//	nil, bool, int64, float64, string, []byte, []any, map[string]any, time.Time
//
// Every integer becomes int64 (a msgpack uint64 above MaxInt64 becomes
// float64), float32 becomes float64, and a JSON number becomes int64 when it
// is written without fraction or exponent and fits, float64 otherwise.
// JSON has no binary type: bytes travel as base64 strings, as jupyter_client
// sends them, and come back as strings.
//
// time.Time appears only in the recognised date fields, and always in UTC:
//
//   - header.date and parent_header.date (Header.Date),
//   - the top-level metadata keys "started", "completed", "date",
//     "submitted" and "received",
//
// when their value is a string that ParseDate accepts. Any other string
// stays a string; ExtractDates converts a whole tree when a caller wants
// that (the hub applies it to db_request queries).
//
// Headers are stricter than Python: the five string fields must be strings
// or null, and a date must be null or parse, else the frame is a
// FrameError. A missing date is a zero Header.Date. Unknown header keys are
// dropped (Message.Raw still carries them).
//
// Encode accepts the value model plus the ordinary Go values a program
// builds (int, uint32, []string, map[string]int, [][]byte, nested maps and
// slices, pointers). A time.Time anywhere is sent as a FormatDate string,
// so both packers carry dates as strings, as Python's msgpack path does.
// Map keys must be strings; NaN and ±Inf are refused by both packers, and
// invalid UTF-8 in strings is sent as U+FFFD (Python's unpackers would
// refuse or replace it). Map keys are written in sorted order, so the same
// message always packs to the same bytes.
//
// # Packers
//
// "msgpack" (the default; "msgpack.packb"/"msgpack.unpackb" in connection
// files) matches Python msgpack 1.0's packb/unpackb defaults. "json"
// matches jupyter_client's json_packer byte for byte, Python's ", " and
// ": " separators and float repr included, for maps whose keys Python
// inserted in sorted order; testdata/vectors.json, made by
// testdata/gen_vectors.py, pins both.
//
// # Concurrency
//
// A Session is safe for concurrent use by several socket-owner goroutines;
// they share one replay history. A Message is not: it belongs to the
// goroutine that decoded or built it.
package wire
