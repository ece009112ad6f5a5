"""Runs the dbtest benchmark workload through ipyparallel's task databases.

Prints one JSON object: {"metric": value, ...}, with the metric names of
taskdb/dbtest.Bench. Called by main.go; run it alone with
/usr/bin/python3 driver.py --records 100000 --db DictDB.
"""
import argparse
import gc
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone

CLIENTS, ENGINES, BUFFER_SIZE = 100, 16, 100
T0 = datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=timezone.utc)


def make_db(name, n):
    """The ipyparallel backends the comparison knows, without culling."""
    if name == "DictDB":
        from ipyparallel.controller.dictdb import DictDB

        return DictDB(record_limit=n + 1, size_limit=1 << 62)
    if name == "SQLiteDB":
        import atexit
        import shutil
        import tempfile

        from ipyparallel.controller.sqlitedb import SQLiteDB

        # A fresh file per database, removed at exit; SQLiteDB commits every
        # 2 s on its own (a tornado callback), so the timed loops call
        # commit() themselves.
        location = tempfile.mkdtemp(prefix="sqlitedb-")
        atexit.register(shutil.rmtree, location, True)
        return SQLiteDB(location=location, filename="tasks.db")
    raise SystemExit("unknown --db %r" % name)


class Workload:
    """The same records as dbtest.Workload."""

    def __init__(self):
        self.clients = ["%08x-%024x" % (i, i) for i in range(CLIENTS)]
        self.engines = ["e%07x-%024x" % (i, i) for i in range(ENGINES)]
        self.buf = os.urandom(BUFFER_SIZE)

    def id(self, i):
        return "%s_%d_%d" % (self.clients[i % CLIENTS], 4242, i)

    def client(self, i):
        return self.clients[i % CLIENTS]

    def submitted(self, i):
        return T0 + timedelta(milliseconds=i)

    def pending(self, i):
        return (i + i // CLIENTS) % 10 == 0

    def record(self, i):
        mid, client, sub = self.id(i), self.client(i), self.submitted(i)
        buf = bytes([i & 255, (i >> 8) & 255, (i >> 16) & 255]) + self.buf[3:]
        r = {
            "msg_id": mid,
            "header": {"msg_id": mid, "msg_type": "apply_request", "username": "bench",
                       "session": client, "date": sub, "version": "5.3"},
            "metadata": {},
            "content": {"a": 5},
            "buffers": [buf],
            "submitted": sub,
            "client_uuid": client,
            "engine_uuid": None, "started": None, "completed": None, "resubmitted": None,
            "received": None, "result_header": None, "result_metadata": None,
            "result_content": None, "result_buffers": None, "queue": None,
            "execute_input": None, "execute_result": None, "error": None,
            "stdout": "", "stderr": "",
        }
        if not self.pending(i):
            r["engine_uuid"] = self.engines[i % ENGINES]
            r["queue"] = "task"
            r["started"] = sub + timedelta(microseconds=100)
            r["completed"] = sub + timedelta(milliseconds=1)
            r["received"] = sub + timedelta(microseconds=1100)
        return r

    def result(self, i):
        done = self.submitted(i) + timedelta(milliseconds=1)
        eng = self.engines[i % ENGINES]
        return {
            "engine_uuid": eng,
            "started": done - timedelta(microseconds=900),
            "completed": done,
            "received": done + timedelta(microseconds=100),
            "result_header": {"msg_id": self.id(i) + "r", "msg_type": "apply_reply", "username": "bench",
                              "session": eng, "date": done, "version": "5.3"},
            "result_metadata": {"status": "ok", "engine": eng, "started": done - timedelta(microseconds=900),
                                "dependencies_met": True},
            "result_content": {"status": "ok"},
            "result_buffers": [bytes(self.buf)],
        }


def commit(db):
    """Makes the writes durable where the backend defers them (SQLiteDB)."""
    if hasattr(db, "_db"):
        db._db.commit()


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(fn, budget=1.0, most=20):
    """Mean seconds per call, repeating fn until budget seconds or most calls."""
    calls, start = 0, time.perf_counter()
    while True:
        out = fn()
        calls += 1
        spent = time.perf_counter() - start
        if spent >= budget or calls >= most:
            return spent / calls, out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--db", default="DictDB")
    args = p.parse_args()
    n, w, out = args.records, Workload(), {}

    ids = [w.id(i) for i in range(n)]
    gc.collect()
    before = rss()
    recs = [w.record(i) for i in range(n)]
    db = make_db(args.db, n)
    start = time.perf_counter()
    for i in range(n):
        db.add_record(ids[i], recs[i])
    commit(db)
    out["Add records/s"] = n / (time.perf_counter() - start)
    del recs  # DictDB keeps the caller's dicts: they are the store
    gc.collect()
    out["Load B/record"] = (rss() - before) / n

    updates = [w.result(i) for i in range(n)]
    start = time.perf_counter()
    for i in range(n):
        db.update_record(ids[i], updates[i])
    commit(db)
    out["Update updates/s"] = n / (time.perf_counter() - start)
    del updates, db
    gc.collect()

    db = make_db(args.db, n)  # fresh records for the queries, as Bench loads them
    for i in range(n):
        db.add_record(ids[i], w.record(i))
    mid = w.submitted(n // 2)
    queries = {
        "pending": ({"completed": None}, None),
        # DictDB compares both plain values with the last one (protocol §10.2): it finds nothing.
        "client_pending": ({"client_uuid": w.client(7), "completed": None}, None),
        "msg_id": ({"msg_id": w.id(n // 3)}, None),
        "msg_id_keys": ({"msg_id": w.id(n // 3)}, ["msg_id", "submitted"]),
        "msg_id_in_100": ({"msg_id": {"$in": [w.id(i * (n // 100)) for i in range(100)]}}, None),
        "submitted_lt_mid_keys": ({"submitted": {"$lt": mid}}, ["msg_id", "submitted"]),
    }
    for name, (q, keys) in queries.items():
        secs, found = timed(lambda: db.find_records(q, keys))
        out["Find/%s ms/query" % name] = secs * 1e3
        out["Find/%s hits/query" % name] = len(found)
    secs, _ = timed(db.get_history)
    out["History ms/op"] = secs * 1e3
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
