"""Drive a hub with the real ipyparallel 7.1 Client and report what it saw.

Usage:
    driver.py CLIENT_FILE run ENGINES   wait for ENGINES engines, submit tasks, report
    driver.py CLIENT_FILE report ID...  report the hub's history, the records
                                        and the results of IDs

It prints one JSON object on stdout; the Go tests make the assertions.
A failing read (e.g. NoData on the nodb backend) is reported as
{"ename": ..., "evalue": ...} in place of its value, not raised.
"""

import datetime
import json
import sys
import time

import ipyparallel as ipp

GREETING = "hello from taskhub"


def square(x):
    return x * x


def greet():
    # A literal: ipyparallel ships the function's code, not its globals.
    print("hello from taskhub", flush=True)
    return 42


def attempt(fn):
    """fn(), or the remote error's name and value."""
    try:
        return fn()
    except ipp.RemoteError as e:
        return {"ename": e.ename, "evalue": e.evalue}


def plain(v):
    """v with datetimes as ISO strings and bytes as lengths, for JSON."""
    if isinstance(v, datetime.datetime):
        return v.isoformat()
    if isinstance(v, bytes):
        return len(v)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def records(rc, ids):
    return attempt(lambda: rc.db_query(
        {"msg_id": {"$in": ids}},
        keys=["msg_id", "submitted", "completed", "engine_uuid", "stdout", "queue"]))


def report(rc, ids, greet_id=None):
    out = {"history": attempt(rc.hub_history), "records": records(rc, ids)}
    if greet_id is not None and isinstance(out["records"], list):
        # The task's stdout reaches the hub on IOPub, possibly after its
        # result: wait for it, bounded.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            recs = [r for r in out["records"] if r["msg_id"] == greet_id]
            if recs and GREETING in (recs[0].get("stdout") or ""):
                break
            time.sleep(0.1)
            out["records"] = records(rc, ids)
    return out


def run(rc, engines):
    rc.wait_for_engines(engines, timeout=60)
    lv = rc.load_balanced_view()
    amr = lv.map_async(square, range(6))
    squares = amr.get(timeout=60)
    ar = lv.apply_async(greet)
    answer = ar.get(timeout=60)
    ids = list(amr.msg_ids) + list(ar.msg_ids)
    out = {"engines": len(rc.ids), "squares": squares, "answer": answer,
           "map_ids": list(amr.msg_ids), "greet_id": ar.msg_ids[0]}
    out.update(report(rc, ids, ar.msg_ids[0]))
    return out


def main():
    path, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    rc = ipp.Client(path)
    try:
        if mode == "run":
            out = run(rc, int(args[0]))
        elif mode == "report":
            out = report(rc, args)
            # Results of tasks this client did not submit, from the hub.
            out["results"] = attempt(lambda: rc.get_result(args).get(timeout=60))
        else:
            sys.exit("unknown mode " + mode)
    finally:
        rc.close()
    json.dump(plain(out), sys.stdout)
    print()


if __name__ == "__main__":
    main()
