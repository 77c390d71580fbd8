"""Coverage-guided fuzzing of txrealtime's wire codecs with atheris (run by hand).

    pip install atheris
    python fuzz/atheris_packets.py -atheris_runs=1000000      # or -max_total_time=600

Every input is decoded as an Engine.IO WebSocket frame (text and binary), as
an Engine.IO polling payload (v4, and v3 text and binary), and fed as a sequence of messages to the
Socket.IO decoder. The only exception allowed out is the codecs' own
``DecodeError``; anything else is a crash atheris reports with its input.
Whatever decodes is re-encoded and must decode to the same packet.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from txrealtime.engineio import packets as eio
    from txrealtime.engineio import packets_v3 as eio3
    from txrealtime.protocol import packets as sio


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    binary = fdp.ConsumeBool()
    raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512))
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 512))

    try:
        packet = eio.decode_ws_frame(raw, binary)
    except eio.DecodeError:
        pass
    else:
        again = eio.decode_ws_frame(*eio.encode_ws_frame(packet))
        assert again == packet, (packet, again)

    try:
        payload = eio.decode_payload(text)
    except eio.DecodeError:
        pass
    else:
        assert eio.decode_payload(eio.encode_payload(payload)) == payload

    for decode in (lambda: list(eio3.iter_payload(text)), lambda: list(eio3.iter_binary_payload(raw))):
        try:
            packets = decode()
        except eio.DecodeError:
            continue
        # A length may split a surrogate pair (as in JavaScript); lone surrogates cannot go as UTF-8.
        lone = any(isinstance(p.data, str) and eio.utf8(p.data).decode() != p.data for p in packets)
        for as_binary in (False, True) if not lone else (False,):
            encoded = eio3.encode_payload(packets, as_binary)
            decoded = list(eio3.iter_binary_payload(encoded) if isinstance(encoded, bytes) else
                           eio3.iter_payload(encoded))
            assert decoded == packets, (packets, decoded)
    try:
        packet = eio3.decode_ws_frame(raw, binary)
    except eio.DecodeError:
        pass
    else:
        assert eio3.decode_ws_frame(*eio3.encode_ws_frame(packet, binary)) == packet

    decoder = sio.Decoder(max_attachments=8)
    for chunk in text.split("\x1e"):
        try:
            message: str | bytes = chunk.encode() if chunk.startswith("b") else chunk
            done = decoder.feed(message)
        except sio.DecodeError:
            decoder = sio.Decoder(max_attachments=8)
            continue
        if done is not None:
            again_decoder = sio.Decoder(max_attachments=1000)
            out = [again_decoder.feed(m) for m in sio.encode(done)][-1]
            assert out == done, (done, out)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
