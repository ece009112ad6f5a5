// Package mongodb is a taskdb backend on a MongoDB collection, for
// histories larger than one machine or shared by several hubs.
//
// Each record is one document: _id is the msg_id (returned as msg_id,
// never as _id), _seq the insertion order, then every schema key (null
// when unset) and the extra keys. Buffers are BSON binary, times BSON
// dates: milliseconds, so finer parts are lost (TimePrecision says so).
// Integers are int64 and floats doubles, so both round-trip exactly. Keys
// holding ".", "$", "%" or NUL, or starting with "_", are stored escaped
// as %XX. Open creates indexes on submitted, completed, client_uuid and
// engine_uuid.
//
// Writes go through the shared write-behind queue (taskdb/internal/batch):
// acknowledged once queued, applied in order as one ordered bulk write per
// batch, buffered through outages up to a bound, then ErrUnavailable.
// Every read first waits for the writes acknowledged before it.
//
// Queries are matched by the shared taskdb/query matcher, so their
// semantics are taskdb's. The server narrows the candidates first with
// a filter translated from the query's top-level conditions that selects
// at least every matching record (see serverFilter); with keys, only the
// needed fields are fetched.
//
// Tests run against a real server: MongoDB (TASKHUB_TEST_MONGODB_URI) or
// the FerretDB fixture of the taskdb/mongodb/ferretdb module
// (TASKHUB_TEST_FERRETDB); see package mongotest.
package mongodb
