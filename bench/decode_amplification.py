"""Decoding amplification (issue 23 item 8): what one ~1 MB message of tiny containers costs the server.

Each case runs in a fresh process: a Socket.IO server on a ``task.Clock`` with an in-memory session
(``tests.fakes.Peer``) receives one message, an EVENT whose arguments are a megabyte of

- ``msgpack-empty``: empty MessagePack maps (``\\x80``, 1 byte each);
- ``msgpack-undefined``: the same with one ``undefined`` among them (ext type 0, 1 byte);
- ``msgpack-nil-arrays``: ``[nil]`` arrays (``\\x91\\xc0``);
- ``json-empty``: empty JSON objects (``{}``);
- ``json-arrays``: ``[0]`` arrays;
- ``json-binary``: empty objects in a binary packet (one placeholder, one attachment).

It prints the CPU seconds the message took (decoding, the depth check, dispatch to a handler: what the
reactor is held for) and the process's peak RSS growth, with the garbage collector's threshold at
``twistd txrealtime``'s 50,000. ``--root DIR`` runs another tree's txrealtime
(before/after); a tree with compiled modules (mypyc) measures the compiled build.

    .venv/bin/python bench/decode_amplification.py [--root DIR] [CASE ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ["msgpack-empty", "msgpack-undefined", "msgpack-nil-arrays", "json-empty", "json-arrays", "json-binary"]
SIZE = 999_900


def one(case: str) -> None:
    import gc
    import resource
    import time

    from twisted.internet.task import Clock

    from tests.fakes import Peer
    from txrealtime.engineio import EngineIOOptions, SessionClosed, SessionEvent, SessionManager
    from txrealtime.socketio import Server, Socket

    gc.set_threshold(50_000)  # as twistd txrealtime sets it (--gc-threshold); Python's 700 adds passes over them all
    manager = SessionManager(EngineIOOptions(max_payload=1_000_000), reactor=Clock())
    server = Server(manager, parser="msgpack" if case.startswith("msgpack") else "json")
    got: list[int] = []

    def connection(socket: Socket) -> None:
        socket.on("x", lambda *args: got.append(len(args)))

    server.on("connection", connection)
    events: list[SessionEvent] = []
    manager.subscribe(events.append)
    peer = Peer(manager, parser=server.parser)

    def event(children: bytes, count: int) -> bytes:  # {type: 2, nsp: "/", data: ["x", *children]}
        return b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdd" + (count + 1).to_bytes(4, "big") + b"\xa1x" + children

    messages: list[str | bytes]
    if case.startswith("msgpack"):
        peer.send(b"\x82\xa4type\x00\xa3nsp\xa1/")
        if case == "msgpack-empty":
            messages = [event(b"\x80" * SIZE, SIZE)]
        elif case == "msgpack-undefined":
            messages = [event(b"\x80" * (SIZE - 3) + b"\xd4\x00\x00", SIZE - 2)]
        else:
            messages = [event(b"\x91\xc0" * (SIZE // 2), SIZE // 2)]
    else:
        peer.send("0")
        if case == "json-empty":
            messages = ['2["x",' + ",".join(["{}"] * (SIZE // 3)) + "]"]
        elif case == "json-arrays":
            messages = ['2["x",' + ",".join(["[0]"] * (SIZE // 4)) + "]"]
        else:
            messages = ['51-["x",{"_placeholder":true,"num":0},' + ",".join(["{}"] * (SIZE // 3 - 12)) + "]", b"bin"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    peer.send(*messages)
    cpu = time.process_time() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    closed = [e.description for e in events if isinstance(e, SessionClosed)]
    print(f"| {case} | {sum(map(len, messages)):,} | {got[0] if got else closed} | {cpu:.2f} s | "
          f"+{(after - before) // 1024} MiB |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose txrealtime to measure")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("cases", nargs="*", default=CASES, help=", ".join(CASES))
    args = parser.parse_args()
    if set(args.cases) - set(CASES):
        parser.error(f"cases are {', '.join(CASES)}")
    if args.one:
        one(args.one)
        return
    print("| case | message bytes | arguments | CPU | peak RSS |\n| --- | --- | --- | --- | --- |", flush=True)
    env = {**os.environ, "PYTHONPATH": f"{args.root.resolve()}{os.pathsep}{ROOT}"}
    for case in args.cases:
        subprocess.run([sys.executable, __file__, "--one", case], env=env, check=True, cwd=args.root)


if __name__ == "__main__":
    main()
