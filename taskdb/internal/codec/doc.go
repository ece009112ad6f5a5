// Package codec stores values of the taskdb value model as msgpack,
// keeping every distinction of the model: int64 and float64, string and
// []byte, and times (msgpack timestamps, UTC, microseconds) at any depth.
// The sqlitedb and postgres backends store documents with it; Decode
// reads untrusted bytes safely (fuzzed).
package codec
