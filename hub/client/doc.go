// Package client is a Go client of a hub's query socket: the requests an
// ipyparallel Client sends to the controller's registration/query port to
// list engines, inspect queues, fetch results, query the task database,
// purge, resubmit and shut down (ipyparallel 7.1, protocol doc §4).
//
//	cf, err := connfile.ReadClient(path)
//	c, err := client.Dial(ctx, cf, client.Options{})
//	defer c.Close()
//	ids, err := c.History(ctx)
//
// The connection file gives the address, the HMAC key and signature scheme,
// and the packer. Replies are matched to requests by their parent msg_id,
// as the Python client does, so a Client may be used by several goroutines
// at once.
//
// Every call takes a context and is bounded by Options.Timeout as well: a
// hub that does not answer gives an error wrapping
// context.DeadlineExceeded that names the hub and the time waited. A hub
// that answers with an error gives a *wire.Error ("ename: evalue").
//
// # Reconnecting
//
// A Client outlives hub restarts. When its connection drops (the hub
// stopped, or sent a reply over Options.MaxMessageSize or MaxFrameSize),
// the calls waiting on it fail at once with an error wrapping
// ErrConnectionLost, and the next call dials the same address again. A
// call that times out has the connection replaced as well, since a hub
// that vanished without closing it would otherwise leave the Client deaf
// for good; other calls waiting on that connection then fail with
// ErrConnectionLost. zmq4's WithAutomaticReconnect is not used: it redials
// from zmq4's reaper and leaks a goroutine per dial.
//
// # Goroutines
//
// A Client runs an owner goroutine, the only one to dial, Send on and
// close its ZeroMQ DEALER, fed through a channel; and, per DEALER, a
// receive pump, the only one to call Recv, which hands each reply to the
// call waiting for it and returns when the connection fails. Close stops
// them all.
package client
