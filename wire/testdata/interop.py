#!/usr/bin/python3
"""Live interop peer for interop_test.go, using jupyter_client's Session.

    interop.py sign   PACKER SCHEME KEY   prints the frames of a signed message
    interop.py verify PACKER SCHEME KEY   reads frames, verifies, deserializes,
                                          prints the message
Frames travel as a JSON list of base64 strings. In printed messages, datetimes
are "DT:<isoformat>" and bytes "B64:<base64>", so Go can check the types.
"""
import base64
import json
import sys
from datetime import datetime, timezone

from jupyter_client.session import Session

mode, packer, scheme, key = sys.argv[1:5]
kw = {} if packer == "json" else {"packer": "msgpack.packb", "unpacker": "msgpack.unpackb"}
s = Session(key=key.encode(), signature_scheme=scheme, session="py-session", username="py", **kw)


def tagged(o):
    if isinstance(o, datetime):
        return "DT:" + o.isoformat()
    if isinstance(o, (bytes, memoryview)):
        return "B64:" + base64.b64encode(bytes(o)).decode()
    raise TypeError(repr(o))


if mode == "sign":
    now = datetime.now(timezone.utc)
    parent = s.msg_header("apply_request")
    content = {"bytes": b"\x00\x01", "float": 0.25, "int": 5, "list": [1, "a", None],
               "str": "h\u00e9llo", "when": now}
    metadata = {"engine": "e-uuid", "started": now, "status": "ok"}
    msg = s.msg("apply_reply", content=content, parent=parent, metadata=metadata)
    frames = s.serialize(msg, ident=[b"engine-0"]) + [b"buf-one", b"\x00" * 1000]
    json.dump([base64.b64encode(bytes(f)).decode() for f in frames], sys.stdout)
elif mode == "verify":
    frames = [base64.b64decode(f) for f in json.load(sys.stdin)]
    idents, msg_list = s.feed_identities(frames, copy=True)
    msg = s.deserialize(msg_list, content=True, copy=True)
    out = {k: msg[k] for k in ("header", "parent_header", "metadata", "content")}
    out["idents"] = idents
    out["buffers"] = msg["buffers"]
    json.dump(out, sys.stdout, default=tagged)
else:
    sys.exit("unknown mode " + mode)
