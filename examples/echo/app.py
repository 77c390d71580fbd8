"""An Engine.IO echo server: ``twistd -n txrealtime --app examples.echo.app:setup``."""

from txrealtime.engineio import MessageReceived, SessionEvent, SessionManager


def setup(manager: SessionManager) -> None:
    """Echo every message back to the session that sent it."""

    def on_event(event: SessionEvent) -> None:
        if isinstance(event, MessageReceived):
            manager.send(event.sid, event.data)

    manager.subscribe(on_event)
