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
// # Goroutines
//
// A Client runs two goroutines for its ZeroMQ DEALER socket: the owner,
// the only one to call Send and Close, fed through a channel; and the
// receive pump, the only one to call Recv, which hands each reply to the
// call waiting for it. Close stops both.
package client
