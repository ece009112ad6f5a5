#!/usr/bin/python3
"""Writes vectors.json: messages signed and packed by jupyter_client.

Deterministic: fixed keys, session ids, msg ids and dates. Regenerate with
    /usr/bin/python3 wire/testdata/gen_vectors.py > wire/testdata/vectors.json
The Go test (vectors_test.go) holds the expected decoded messages; keep the
two in step. Dicts are built with sorted keys, so that Go, which packs keys
in sorted order, can re-pack them byte for byte.
"""
import base64
import json
import sys
from datetime import datetime, timedelta, timezone

from jupyter_client.session import Session

UTC = timezone.utc
D1 = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
D2 = datetime(2024, 1, 2, 3, 4, 6, tzinfo=UTC)  # no fraction
D3 = datetime(2024, 1, 2, 4, 4, 7, 500000, tzinfo=timezone(timedelta(hours=1)))
SESSION = "0123abcd-4567ef0123456789abcdef01"
ENGINE = "fedcba98-76543210fedcba9876543210"
KEY = b"5fe1fb64-e3a7a3d0d0c0b5b5ae3b9e5a"


def header(msg_id, msg_type, date, session=SESSION):
    return {"msg_id": msg_id, "msg_type": msg_type, "username": "alice",
            "session": session, "date": date, "version": "5.3"}


def apply_request():
    parent = {}
    metadata = {"after": [], "follow": ["f1", "f2"], "retries": 0,
                "targets": [0, 3], "timeout": None}
    content = {}
    buffers = [b"\x80\x04\x95canned-pickle\x00\xff", b"args-buffer" * 3]
    return header("m-apply-1", "apply_request", D1), parent, metadata, content, buffers


def apply_reply():
    parent = header("m-apply-1", "apply_request", D1)
    metadata = {"dependencies_met": True, "engine": ENGINE, "is_broadcast": False,
                "started": D2, "status": "ok"}
    content = {"status": "ok"}
    return header("m-reply-1", "apply_reply", D2, session=ENGINE), parent, metadata, content, [b"result"]


def values():
    content = {
        "big": 2**62, "bool": True, "bytes": b"\x00\x01\xfe\xff", "empty_list": [],
        "empty_map": {}, "float": 1.5, "float_exp": 1e-07, "float_int": 3.0,
        "float_large": 1e16, "int": 42, "list": [1, "two", None, False, -7],
        "neg": -1, "neg_big": -(2**40), "nested": {"a": {"b": [{"c": -129}]}},
        "none": None, "text": "caf\u00e9 \u2603 \"quoted\" back\\slash\nnew\ttab\x01",
        "u16": 65535, "u8": 200, "when": D1,
    }
    return header("m-values-1", "db_reply", D1), {}, {}, content, []


def offset_date():
    return header("m-offset-1", "status", D3), {}, {"submitted": D3}, {"execution_state": "idle"}, []


def check_sorted(o):
    if isinstance(o, dict):
        assert list(o) == sorted(o), "keys not sorted: %r" % list(o)
        for v in o.values():
            check_sorted(v)
    elif isinstance(o, list):
        for v in o:
            check_sorted(v)


def case(name, packer, scheme, key, build, same):
    if packer == "json":
        s = Session(key=key, signature_scheme=scheme, session=SESSION, username="alice")
    else:
        s = Session(key=key, signature_scheme=scheme, session=SESSION, username="alice",
                    packer="msgpack.packb", unpacker="msgpack.unpackb")
    h, p, md, c, bufs = build()
    for d in (md, c):  # headers keep jupyter_client's order
        check_sorted(d)
    msg = {"header": h, "parent_header": p, "metadata": md, "content": c,
           "msg_id": h["msg_id"], "msg_type": h["msg_type"]}
    frames = s.serialize(msg, ident=[b"client-7", b"\x00k\x8b\x45\x67"]) + bufs
    return {"name": name, "packer": packer, "scheme": scheme, "key": key.decode(),
            "same_frames": same,
            "frames": [base64.b64encode(bytes(f)).decode() for f in frames]}


cases = []
for packer in ("json", "msgpack"):
    # msgpack sends dates as isoformat() strings ("+00:00"); Go sends "Z", so
    # frames holding dates cannot be re-packed byte for byte with msgpack.
    dated = [0, 1, 2, 3] if packer == "json" else []
    cases += [
        case(packer + "/apply_request", packer, "hmac-sha256", KEY, apply_request,
             dated if packer == "json" else [1, 2, 3]),
        case(packer + "/apply_reply", packer, "hmac-sha256", KEY, apply_reply,
             dated if packer == "json" else [3]),
        case(packer + "/values", packer, "hmac-sha256", KEY, values,
             dated if packer == "json" else [1, 2]),
        # A +01:00 date is re-sent in UTC, so neither packer can re-pack it.
        case(packer + "/offset_date", packer, "hmac-sha256", KEY, offset_date, [1, 3]),
    ]
    for scheme in ("hmac-sha1", "hmac-sha512", "hmac-md5"):
        cases.append(case(packer + "/" + scheme, packer, scheme, KEY, apply_reply,
                          dated if packer == "json" else [3]))
    cases.append(case(packer + "/unsigned", packer, "hmac-sha256", b"", apply_request,
                      dated if packer == "json" else [1, 2, 3]))

json.dump({"cases": cases}, sys.stdout, indent=1)
sys.stdout.write("\n")
