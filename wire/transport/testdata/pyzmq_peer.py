"""pyzmq/libzmq peer for the wire/transport interop tests.

  pyzmq_peer.py dealer tcp://127.0.0.1:PORT
      A DEALER sends the MESSAGES to an echo ROUTER, expects each back as
      [b"re", *frames], prints "ok".
  pyzmq_peer.py sub tcp://127.0.0.1:PORT
      A SUB subscribes to b"topic" and expects 3 messages [b"topic.x", b"n"]
      from a PUB that publishes until it sees "ok".
  pyzmq_peer.py router
      A ROUTER binds an ephemeral port, prints it, echoes every message as
      [identity, b"re", *frames] until it receives [b"quit"].
"""
import sys

import zmq

MESSAGES = [
    [b"one"],
    [b"", b""],
    [b"a" * 255, b"b" * 256, b""],
    [b"<IDS|MSG>", b"sig", b"{}", b"{}", b"{}", b"{}", b"x" * 100_000],
    [bytes(range(256)) * 1000],
]
TIMEOUT_MS = 10_000


def dealer(addr):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    s.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
    s.connect(addr)
    for _ in range(3):
        for m in MESSAGES:
            s.send_multipart(m)
            got = s.recv_multipart()
            if got != [b"re"] + m:
                sys.exit("bad echo: %r... for %r..." % ([f[:20] for f in got], [f[:20] for f in m]))
    print("ok", flush=True)


def sub(addr):
    ctx = zmq.Context()
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    s.setsockopt(zmq.SUBSCRIBE, b"topic")
    s.connect(addr)
    for _ in range(3):
        got = s.recv_multipart()
        if got[0] != b"topic.x" or len(got) != 2:
            sys.exit("bad publication: %r" % got)
    print("ok", flush=True)


def router():
    ctx = zmq.Context()
    s = ctx.socket(zmq.ROUTER)
    s.setsockopt(zmq.LINGER, 1000)
    s.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    print(port, flush=True)
    while True:
        ident, *frames = s.recv_multipart()
        if frames == [b"quit"]:
            break
        s.send_multipart([ident, b"re"] + frames)


if __name__ == "__main__":
    if sys.argv[1] == "dealer":
        dealer(sys.argv[2])
    elif sys.argv[1] == "sub":
        sub(sys.argv[2])
    else:
        router()
