r"""The classic Socket.IO tutorial, served by twistd: every new connection makes the server emit ``news``.

Run it from the checkout with::

    twistd -n txrealtime --listen tcp:8080:interface=127.0.0.1 \
        --static examples/hello/public --app examples.hello.app:setup

and open http://127.0.0.1:8080/ (``interface=127.0.0.1``: this machine only). The page loads the
client from ``/socket.io/socket.io.js``, which txrealtime serves, as Node's socket.io does.
"""

from __future__ import annotations

from txrealtime.socketio import Server, Socket


def setup(io: Server) -> None:
    """Say hello to everyone each time someone connects."""

    @io.on("connection")
    def connection(socket: Socket) -> None:
        io.emit("news", {"hello": "world", "online": len(io.sockets.sockets)})
