// Package connfile reads and writes ipyparallel 7.1 connection files, the
// JSON documents through which a controller tells clients and engines where
// its sockets are and how messages are signed and packed.
//
// A controller writes two files into its connection directory:
// [ClientFile] (decoded as [Client]) and [EngineFile] (decoded as [Engine]).
// Both carry the HMAC key, so [Write] creates them with mode 0600 and
// replaces them atomically: a reader sees either the old file or the new
// one, never a partial or world-readable one.
//
// The field names, order and indentation match what ipyparallel writes, so
// unmodified Python clients and engines can use files written here, and
// files written by a Python controller can be read here.
package connfile
