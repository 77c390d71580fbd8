"""query_of reads a request's query string as urllib does, without urllib on the common path."""

from __future__ import annotations

from typing import cast
from urllib.parse import parse_qsl, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.web.http import Request

from txrealtime.engineio.polling import query_of


class _Uri:
    def __init__(self, uri: bytes) -> None:
        self.uri = uri


def reference(uri: bytes) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(urlsplit(uri.decode("latin-1")).query, keep_blank_values=True):
        params.setdefault(key, value)
    return params


def test_engine_io_queries() -> None:
    uri = b"/socket.io/?EIO=4&transport=polling&t=PXz1&sid=Ab-_c%3D&empty=&flag&EIO=3#frag"
    assert query_of(cast(Request, _Uri(uri))) == {
        "EIO": "4", "transport": "polling", "t": "PXz1", "sid": "Ab-_c=", "empty": "", "flag": "",
    }
    assert query_of(cast(Request, _Uri(b"/socket.io/"))) == {}


@settings(max_examples=500)
@given(st.lists(st.sampled_from(list(b"ab=&%+?#;E9 ./") + [0x32, 0x46, 0xE9]), max_size=40).map(bytes))
def test_agrees_with_urllib(query: bytes) -> None:
    uri = b"/socket.io/?" + query
    assert query_of(cast(Request, _Uri(uri))) == reference(uri)
