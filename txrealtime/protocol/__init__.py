"""The Socket.IO protocol both roles share, sans-I/O: the server (:mod:`txrealtime.socketio`) and the
client (:mod:`txrealtime.client`) drive it.

- :mod:`txrealtime.protocol.packets`, :mod:`txrealtime.protocol.parser`,
  :mod:`txrealtime.protocol.msgpack`: the packet codecs (JSON with binary attachments, MessagePack);
- :mod:`txrealtime.protocol.handlers`: listener registries and how a handler is called;
- :mod:`txrealtime.protocol.acks`: the table of pending acknowledgements and their calling conventions;
- :mod:`txrealtime.protocol.dispatch`: one socket's event and acknowledgement rules, parametrised by
  :class:`txrealtime.protocol.dispatch.Role`;
- :mod:`txrealtime.protocol.errors`: the errors both roles raise.

Nothing here imports a reactor or does I/O: packets go out through a callable, time comes from a
clock passed in.
"""
