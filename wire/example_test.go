package wire_test

import (
	"errors"
	"fmt"

	"github.com/taskhub/taskhub/wire"
)

func ExampleNewSession() {
	s, err := wire.NewSession(wire.Config{
		Key:    []byte("5fe1fb64-e3a7a3d0d0c0b5b5ae3b9e5a"), // the connection file's key
		Packer: "json",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// What the connection files announce, so that clients adopt it.
	fmt.Println(s.PackName(), s.UnpackName(), s.SignatureScheme())
	// Output: json json hmac-sha256
}

func ExampleSession_Encode() {
	s, _ := wire.NewSession(wire.Config{Key: []byte("secret"), Packer: "json"})
	request := s.NewMessage("queue_request", map[string]any{"targets": nil, "verbose": false}, nil)
	request.Identities = [][]byte{[]byte("client-1")}

	frames, err := s.Encode(request)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d frames: identity %q, delimiter %q, %d-digit signature, content %s\n",
		len(frames), frames[0], frames[1], len(frames[2]), frames[6])
	// Output: 7 frames: identity "client-1", delimiter "<IDS|MSG>", 64-digit signature, content {"targets": null, "verbose": false}
}

func ExampleSession_Decode() {
	client, _ := wire.NewSession(wire.Config{Key: []byte("secret")})
	hub, _ := wire.NewSession(wire.Config{Key: []byte("secret")})
	frames, _ := client.Encode(client.NewMessage("result_request", map[string]any{"msg_ids": []string{"m1"}}, nil))

	m, err := hub.Decode(frames)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Header.MsgType, m.Content["msg_ids"])

	// The same frames again are a replay.
	_, err = hub.Decode(frames)
	fmt.Println(errors.Is(err, wire.ErrReplayed))

	// A reply names the request as its parent; errors have one shape.
	reply := hub.NewMessage("result_reply", (&wire.Error{Name: "KeyError", Value: "No such msg: m1"}).Content(), &m.Header)
	fmt.Println(reply.Parent.MsgID == m.Header.MsgID, reply.Content["status"], reply.Content["ename"])
	// Output:
	// result_request [m1]
	// true
	// true error KeyError
}
