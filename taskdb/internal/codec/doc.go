// Package codec stores values of the taskdb value model as msgpack,
// keeping every distinction of the model: int64 and float64, string and
// []byte, and times (msgpack timestamps, UTC, microseconds) at any depth.
// It is the one value codec of the sqlitedb and postgres backends.
//
// Append and Encode write canonical values only (ErrNotCanonical tells
// the caller to normalize first), with map keys sorted, so that stored
// bytes are deterministic and a map reads back as a taskdb.Doc in key
// order. AppendDoc and DecodeDoc store a whole record Doc, its keys in
// record order (CompareKeys). Decode reads values as maps; DocDecoder
// reads them as Docs that share the input, carving Docs and arrays out of
// a chunk.Alloc, with Key, Skip and Raw for callers that walk a map
// themselves. Every decoder reads untrusted bytes safely (fuzzed).
package codec
