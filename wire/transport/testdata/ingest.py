"""One-way ingest through libzmq, the pattern of BenchmarkIngest.

  ingest.py N              -> prints "msgs/s <rate> cpu-ns/msg <cpu>"
  ingest.py send ADDR N    -> a DEALER sends N messages to the ROUTER at ADDR

A ROUTER binds 127.0.0.1, a DEALER in a child process sends N+1 6-frame task
messages (~400 bytes), and the ROUTER receives them; the rate is timed from
the first message received to the last, and so is the CPU time (user and
system, all threads) of the ROUTER's process, libzmq's I/O thread included. With "send", only the DEALER runs,
for a Go ROUTER.
"""
import multiprocessing
import resource
import sys
import time

import zmq

FRAMES = [
    b"<IDS|MSG>",
    b"7" * 64,
    b'{"msg_id":"c0ffee00-1234-4abc-8def-0123456789ab","msg_type":"apply_request",'
    b'"username":"user","session":"0d9e1c1e-f00d4e1d8a2b3c4d5e6f7a8b","date":"2024-01-02T03:04:05.123456Z",'
    b'"version":"5.3"}',
    b"{}",
    b'{"after":[],"follow":[],"timeout":null,"targets":[],"retries":0}',
    b'{"code":"x = compute(42)","silent":false,"store_history":true}',
]


def send(addr, n):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.connect(addr)
    for _ in range(n):
        s.send_multipart(FRAMES)
    s.close(linger=-1)
    ctx.term()


def main():
    n = int(sys.argv[1])
    ctx = zmq.Context()
    r = ctx.socket(zmq.ROUTER)
    r.setsockopt(zmq.RCVTIMEO, 30_000)
    port = r.bind_to_random_port("tcp://127.0.0.1")
    p = multiprocessing.Process(target=send, args=("tcp://127.0.0.1:%d" % port, n + 1))
    p.start()
    r.recv_multipart()
    start, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(n):
        r.recv_multipart()
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    p.join()
    print("msgs/s %.0f cpu-ns/msg %.0f" % (n / elapsed, cpu / n * 1e9))


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]))
    else:
        main()
