"""hubload's python scenario: the real ipyparallel Client runs no-op tasks.

Usage: driver.py CLIENT_FILE TASKS ENGINES
Prints "start" when the measurement starts, then one JSON line:
{"tasks": n, "seconds": s, "latencies": [s, ...]}.
"""

import json
import sys
import time

import ipyparallel as ipp


def noop():
    return None


def main():
    url, n, engines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rc = ipp.Client(url)
    try:
        rc.wait_for_engines(engines, timeout=120)
        view = rc.load_balanced_view()
        # Warm up: imports and connections on every engine.
        view.wait([view.apply_async(noop) for _ in range(4 * engines)])
        print("start", flush=True)
        t0 = time.perf_counter()
        ars = [view.apply_async(noop) for _ in range(n)]
        view.wait(ars)
        seconds = time.perf_counter() - t0
        latencies = []
        for ar in ars:
            ar.get()  # raises the task's error, if any
            md = ar.metadata
            latencies.append((md["received"] - md["submitted"]).total_seconds())
        print(json.dumps({"tasks": n, "seconds": seconds, "latencies": latencies}))
    finally:
        rc.close()


if __name__ == "__main__":
    main()
