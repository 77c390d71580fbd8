"""The chat's event contract, declared once and shared by the server (``app.setup``) and the Python client
(``app.chat``): Node's ``ClientToServerEvents`` and ``ServerToClientEvents`` interfaces."""

from __future__ import annotations

from typing import TypedDict

from txrealtime.contract import ToClient, ToServer


class Message(TypedDict):
    """A chat message: its room and its text."""

    room: str
    text: str


class Chat:
    """The events: ``ToServer[[arguments...], acknowledgement]("name")`` and ``ToClient`` likewise."""

    join = ToServer[[str], int]("join")
    """The client joins a room; the server acknowledges with how many rooms it is in."""
    say = ToServer[[Message], None]("say")
    """The client says something in a room (no acknowledgement)."""
    message = ToClient[[Message], None]("message")
    """The server relays a message to a room."""
    ping = ToClient[[], str]("ping")
    """The server asks; the client acknowledges with ``"pong"``."""
