"""The codec work of one echo, without the layers around it (nor twisted.web: start-up stays smaller under valgrind).

One group at a time, to tell what compiling each module gives::

    python -m bench.codecs engineio
    valgrind --tool=callgrind python -m bench.codecs socketio --messages 20000
"""

from __future__ import annotations

import argparse
import json
import time

from txrealtime import _autobahn
from txrealtime.engineio import packets as eio
from txrealtime.protocol import msgpack
from txrealtime.protocol import packets as sio

CODEC_GROUPS = ("engineio", "socketio", "msgpack", "frames")


def codecs(messages: int, group: str = "all") -> float:
    """The codec work of one echo, without the layers around it: ``group`` is one of :data:`CODEC_GROUPS` or "all".

    engineio: a WebSocket frame and a two-packet polling payload decoded and encoded; socketio: an event with an
    ack id decoded and its ack encoded (JSON); msgpack: the same with the msgpack parser; frames: a client frame
    unmasked and a server frame built.
    """
    body = json.dumps(["echo", {"pad": "z" * 32}], separators=(",", ":"))
    text, frame = "4" + f"42{messages}{body}", f"42{messages}{body}".encode()
    payload = eio.RECORD_SEPARATOR.join([text, "2"])
    decoder = sio.Decoder()
    ack = sio.Packet(sio.PacketType.ACK, "/", [{"pad": "z" * 32}], 7)
    mp_message = msgpack.encode(sio.Packet(sio.PacketType.EVENT, "/", ["echo", {"pad": "z" * 32}], 7))[0]
    assert isinstance(mp_message, bytes)
    mask = b"\x01\x02\x03\x04"
    groups = CODEC_GROUPS if group == "all" else (group,)
    start = time.perf_counter()
    for _ in range(messages):
        if "engineio" in groups:
            packet = eio.decode_ws_frame(text.encode(), False)
            eio.encode_ws_frame(packet)
            eio.encode_payload(list(eio.iter_payload(payload)))
        if "socketio" in groups:
            decoder.feed(frame.decode()[1:])
            sio.encode(ack)
        if "msgpack" in groups:
            msgpack.decode(mp_message)
            msgpack.encode(ack)
        if "frames" in groups:
            _autobahn.ws_frame(_autobahn.unmask(frame, mask), False)
    return (time.perf_counter() - start) / messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("group", choices=[*CODEC_GROUPS, "all"])
    parser.add_argument("--messages", type=int, default=100000)
    args = parser.parse_args()
    print(f"{args.group}: {codecs(args.messages, args.group) * 1e6:.2f} µs per echo")


if __name__ == "__main__":
    main()
