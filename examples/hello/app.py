"""The classic Socket.IO tutorial, served by twistd: every new connection makes the server emit ``news``.

Run it with::

    twistd -n txrealtime --listen tcp:8080 --static examples/hello/public --app examples.hello.app:setup

and open http://localhost:8080/. The page loads the client from ``/socket.io/socket.io.js``,
which txrealtime serves, as Node's socket.io does.
"""

from __future__ import annotations

from txrealtime.socketio import Server, Socket


def setup(io: Server) -> None:
    """Say hello to everyone each time someone connects."""

    @io.on("connection")
    def connection(socket: Socket) -> None:
        io.emit("news", {"hello": "world", "online": len(io.sockets.sockets)})
