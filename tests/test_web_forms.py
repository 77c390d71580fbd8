"""BoundedSite skips twisted.web's form parsing for bodies that are not forms, and only for those."""

from __future__ import annotations

import json
from typing import cast

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from tests.memhttp import MemoryHTTP
from txrealtime.web import BoundedSite


class ArgsResource(Resource):
    """Answers with the request's parsed arguments."""

    isLeaf = True

    def render_POST(self, request: Request) -> bytes:
        args = {k.decode(): [v.decode() for v in vs] for k, vs in (request.args or {}).items()}
        body = request.content.read() if request.content is not None else b""
        return json.dumps({"args": args, "body": body.decode()}).encode()


def post(content_type: str, body: bytes) -> dict[str, object]:
    root = cast(IResource, ArgsResource())
    http = MemoryHTTP(root, site=BoundedSite(root, access_log=False, header_timeout=None))
    answer = http.request("POST", "/?q=1", body, {"Content-Type": content_type}).result()
    assert answer.status == 200
    return cast(dict[str, object], json.loads(answer.body))


def test_form_bodies_are_still_parsed_into_args() -> None:
    for content_type in ("application/x-www-form-urlencoded", "Application/X-WWW-Form-Urlencoded; charset=UTF-8"):
        assert post(content_type, b"a=1&b=2") == {"args": {"q": ["1"], "a": ["1"], "b": ["2"]}, "body": "a=1&b=2"}


def test_multipart_bodies_are_still_parsed_into_args() -> None:
    body = b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--XX--\r\n'
    assert post("multipart/form-data; boundary=XX", body)["args"] == {"q": ["1"], "a": ["1"]}


def test_other_bodies_are_left_alone() -> None:
    for content_type in ("text/plain;charset=UTF-8", "application/octet-stream", "application/json"):
        assert post(content_type, b"a=1&b=2") == {"args": {"q": ["1"]}, "body": "a=1&b=2"}
