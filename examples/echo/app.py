r"""An Engine.IO echo server and its page (examples/echo/public/index.html).

Run it from the checkout, then open http://127.0.0.1:8080/::

    twistd -n txrealtime --listen tcp:8080:interface=127.0.0.1 \
        --engineio --app examples.echo.app:setup --static examples/echo/public

(``python -m txrealtime`` takes the same options.) ``--engineio`` serves bare
Engine.IO at ``/engine.io/``, where the page's engine.io-client connects, and
gives this hook the :class:`~txrealtime.engineio.SessionManager`; without it,
twistd stops with one line saying to add it.
"""

from txrealtime.engineio import MessageReceived, SessionEvent, SessionManager


def setup(manager: SessionManager) -> None:
    """Echo every message back to the session that sent it."""

    def on_event(event: SessionEvent) -> None:
        if isinstance(event, MessageReceived):
            manager.send(event.sid, event.data)

    manager.subscribe(on_event)
