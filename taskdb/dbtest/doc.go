// Package dbtest is the conformance suite and benchmark set that every
// taskdb backend runs unchanged:
//
//	func TestConformance(t *testing.T) {
//		dbtest.Run(t, func(*testing.T) taskdb.DB { return dictdb.New(dictdb.DefaultOptions()) })
//	}
//
//	func BenchmarkDB(b *testing.B) {
//		dbtest.Bench(b, func(*testing.B) taskdb.DB { return dictdb.New(dictdb.Options{}) })
//	}
//
// Run covers every verb, every query operator and their combinations,
// null and missing values, type classes, dotted paths, projection,
// isolation, history order, errors, the defects of ipyparallel's backends
// (protocol reference §10) and concurrent readers and writers. A backend
// storing nothing runs RunBlackHole instead.
//
// Backends declare what they cannot do through small optional interfaces
// checked by type assertion: TimePrecision for stores coarser than a
// microsecond.
package dbtest
