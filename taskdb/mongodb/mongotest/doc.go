// Package mongotest gives tests a MongoDB server: the one
// TASKHUB_TEST_MONGODB_URI names, or a FerretDB fixture process started
// from the binary TASKHUB_TEST_FERRETDB names (built from the
// taskdb/mongodb/ferretdb module: cd taskdb/mongodb/ferretdb && go build
// -o /tmp/ferretdb .). Without either, tests skip; under CI=true they
// fail.
package mongotest
