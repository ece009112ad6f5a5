// Command hubload is a load generator for ipyparallel-compatible
// controllers: the taskhub hub (hubd) or the reference
// ipyparallel.controller, reached through their connection files.
//
// The "fake" scenario (default) registers N fake engines that answer every
// task at once, runs M clients that each keep a window of no-op
// load-balanced tasks in flight, and one client that loops db_request; it
// prints tasks/s, p50/p99 submit-to-result latency, and query latency:
//
//	hubload -dir ~/.ipython/profile_default/security -engines 4 -clients 4 -window 64 -duration 10s
//
// The "python" scenario runs the real ipyparallel Client (a driver script
// submitting no-op apply_async tasks) with real Python engines.
//
// With -spawn, hubload starts the controllers itself, one after the other,
// runs the same load against each, stops them, and prints one table with
// the ratio of each controller's tasks/s to the reference's:
//
//	hubload -spawn hubd,reference -duration 10s
//	hubload -spawn hubd,reference -scenario python -tasks 2000
//
// Controllers started by -spawn: hub (an in-process hub.Hub with hubd's
// defaults), hubd (the binary, built from ./cmd/hubd unless -hubd names
// it) and reference (python -m ipyparallel.controller in a temporary
// profile). Each runs in a temporary directory and is stopped, with the
// processes it started, before the next one starts. Everything binds and
// dials 127.0.0.1 only.
package main
