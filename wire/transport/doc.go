// Package transport is a hardened TCP transport for go-zeromq/zmq4 v0.17.0.
//
// zmq4 lets a program register its own transport; this package wraps the
// net.Listener and net.Conn that zmq4 gets, and never forks zmq4:
//
//	scheme, err := transport.Register(transport.Options{Logger: log})
//	sock := zmq4.NewRouter(ctx)
//	err = sock.Listen(scheme + "://127.0.0.1:0") // port in sock.Addr()
//
// Peers see plain ZMTP 3.x over TCP with the NULL mechanism: pyzmq/libzmq
// peers and zmq4 "tcp://" dialers connect to the port as usual, and Go
// dialers may also dial through the scheme to get the same protections.
// Register may be called any number of times: equal Options share one
// scheme and different ones get their own, since zmq4's registry is global
// and refuses a name twice.
//
// # zmq4 defects covered
//
// Every byte a peer sends passes a streaming ZMTP parser (greeting,
// commands, frame headers; bodies are skipped, not held) before zmq4 reads
// it. A connection that breaks a rule is closed and logged, and zmq4 sees
// an error that is not a timeout on that connection only, so it forgets
// the peer (zmq4 ignores timeout errors and would keep a dead peer).
//
//   - A frame header announcing more than MaxFrameSize bytes, or a message
//     over MaxMessageSize, panicked the process (makeslice in Conn.read).
//     The connection is dropped before zmq4 allocates.
//   - A malformed READY property panicked the accept goroutine, and so
//     did a Socket-Type zmq4 does not know or cannot find (it title-cases
//     property names without lowering them). The greeting (signature,
//     version 3.x, mechanism NULL, as-server 0) and the READY properties
//     are validated first; commands must come alone, READY first and
//     once, with a well-formed name.
//   - One connection that never greets blocked every later one, since
//     zmq4 handshakes inside its accept loop (upstream #131). The listener
//     sends zmq4's greeting itself and runs each peer's half of the
//     handshake in its own goroutine under HandshakeTimeout (at most 1024
//     at once); Accept hands zmq4 only connections whose greeting and READY
//     have arrived, replaying those exact bytes and discarding the
//     identical greeting zmq4 then writes. Dialers get the same deadline.
//   - One peer that stops reading blocked every ROUTER send to every peer
//     (a socket-wide lock held across a write with no deadline). Writes are
//     queued per connection and written by that connection's goroutine,
//     so zmq4's lock is never held across the network and a Send never
//     waits for a peer. As libzmq does at a peer's high-water mark (but
//     counting bytes), a message to a peer with MaxSendQueue bytes queued
//     is dropped, until the queue is down to half of that: Write returns
//     ErrQueueFull, which zmq4's ROUTER Send returns and its PUB ignores,
//     and the peer stays connected. Each such episode is logged once, and
//     Options.Counters counts the messages. A peer that does not take a
//     write (up to 1 MiB) within WriteTimeout, having stopped or nearly
//     stopped reading, is disconnected and logged: it is most likely gone,
//     and it holds up to MaxSendQueue bytes of memory.
//   - Reads took two syscalls per frame. Reads are buffered, and writes
//     are coalesced: a message goes out in one syscall as soon as its last
//     frame is queued, never later, batched with others queued meanwhile.
//   - zmq4 leaves a connection open when the handshake fails on
//     incompatible socket types; such connections are closed.
//
// Bodies of ZMTP commands are limited to 8 KiB and messages to 65,536
// frames (zmq4 holds a slice header per frame, even an empty one). A peer's
// empty frame cannot panic a PUB or XPUB socket (conn.subscribe) in
// v0.17.0: zmq4 checks the frame before subscribing.
//
// # zmq4 defects that remain
//
//   - No CURVE (nor PLAIN) security: the transport accepts NULL only.
//   - A ZMTP PING (or any command) from a peer reaches Recv as a message
//     with Type zmq4.CmdMsg whose frame is the raw command (after the
//     identity, on a ROUTER); the caller must drop it. zmq4
//     never answers PING, so a peer with ZMTP heartbeats and a heartbeat
//     timeout disconnects (ipyparallel and jupyter_client set none).
//   - PUB queues are unbounded in zmq4; only the bytes queued to each
//     subscriber's connection are bounded here (zmq4's PUB writer hands
//     every message to every subscriber's connection at once, so its own
//     queue stays short).
//   - A ROUTER Send waits, up to the socket's zmq4.WithTimeout (5 minutes
//     by default), until the socket's first peer ever connects; a server
//     that must never wait sets a short timeout (a send to an absent peer
//     is then dropped, as it is for a departed one).
//   - A send to a ROUTER peer that has gone is silently dropped.
//   - zmq4's automatic reconnect must never be set on a listening socket:
//     it would dial its own endpoint when a peer leaves.
//   - A PUB socket's writer goroutine is never stopped: it outlives
//     Close, one per PUB socket.
//   - Messages are held in memory whole, and zmq4 allocates a frame's
//     body as soon as its header arrives: a peer announcing MaxFrameSize
//     bytes costs that much (virtual) memory before sending them. Choose
//     the limits accordingly.
package transport
