package transport_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/go-zeromq/zmq4"
	"github.com/taskhub/taskhub/wire/transport"
)

func ExampleRegister() {
	scheme, err := transport.Register(transport.Options{MaxFrameSize: 16 << 20})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := zmq4.NewRouter(ctx)
	defer sock.Close()
	if err := sock.Listen(scheme + "://127.0.0.1:0"); err != nil {
		log.Fatal(err)
	}
	// Peers, Python ones included, connect to the plain TCP endpoint.
	endpoint := fmt.Sprintf("tcp://127.0.0.1:%d", sock.Addr().(*net.TCPAddr).Port)
	peer := zmq4.NewDealer(ctx)
	defer peer.Close()
	if err := peer.Dial(endpoint); err != nil {
		log.Fatal(err)
	}
	if err := peer.Send(zmq4.NewMsgString("hello")); err != nil {
		log.Fatal(err)
	}
	msg, err := sock.Recv() // [peer identity, "hello"]
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", msg.Frames[1])
	// Output: hello
}
