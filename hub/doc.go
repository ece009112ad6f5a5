// Package hub is the controller: an ipyparallel 7.1 compatible Hub that
// unmodified ipyparallel clients and engines, and Go programs, use over
// ZeroMQ.
//
// # Sockets
//
// The hub binds every socket of the ipyparallel topology: the
// registration/query ROUTER shared by clients and engines; ROUTER pairs for
// direct (mux), control and load-balanced (task) requests, one socket
// facing clients and one facing engines; an IOPub SUB (engines) relayed to
// a PUB (clients); the notification PUB; the heartbeat ping PUB and pong
// ROUTER; and the broadcast ROUTERs, which answer broadcast-view requests
// with a NotImplementedError reply.
//
// # Goroutines
//
// Run starts, per socket, one owner goroutine, the only caller of Send and
// Close, fed through a channel; and one receive pump, the only caller of
// Recv (zmq4's Recv blocks without a poll), which drops ZMTP command
// messages and feeds the state goroutine. The state goroutine is the one
// that called Run: it alone owns the engines, pending tasks, scheduler
// queues and dependency graph, and it never blocks on the network. Task
// database operations go, in order, to one DB goroutine through a bounded
// queue; queries that read the database run there too, after the writes
// queued before them, and send their replies to the query socket's owner.
// Timers post closures back to the state goroutine.
//
// No send waits for a peer: wire/transport queues each connection's
// messages for its own writer and, when a slow peer's queue is full,
// drops them (never requests to engines) and counts them in Stats. Log
// lines are rate-limited per message, so a flood of bad messages cannot
// flood the log.
//
// Routed traffic (requests, results, IOPub) is relayed as the exact frames
// received, with identity frames swapped; the hub decodes it (verifying
// the signature) only to route and record it, and never re-signs it.
//
// # Records
//
// Every request becomes a task record the moment it arrives, and its
// assignment, result and output complete it (see package taskdb). A
// database error is logged and counted in Stats, never fatal to a task.
//
// # Memory
//
// A pending task's bookkeeping lives until its result. Of finished tasks
// the hub remembers only the last Config.TaskMemory (how and where each
// ended); a dependency on an older one is looked up in the task database
// on the DB goroutine, and the scheduler hears the answer as an event.
//
// # Lifecycle
//
//	h, err := hub.New(cfg, db, log)
//	err = h.Listen()                  // bind, write connection files
//	fmt.Println(h.ConnectionFiles())  // ports are known now
//	err = h.Run(ctx)                  // serve until ctx ends or shutdown_request
//
// Run returns nil after a clean shutdown: client requests are refused,
// results of tasks already on engines may land, the database queue is
// flushed, sockets closed and connection files removed, all within
// Config.ShutdownTimeout.
package hub
