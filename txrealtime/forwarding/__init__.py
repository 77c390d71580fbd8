"""Any node serves any session: no sticky load balancer needed in front of nodes that share a link.

``twistd txrealtime --redis URL`` turns it on (``--no-forwarding`` turns it
off); embedded, start a :class:`Forwarder` on the node's
:class:`txrealtime.engineio.EngineIOResource` and the link its adapter uses::

    link = RedisLink("redis://127.0.0.1:6379")
    server = Server(adapter=redis_adapter(link))
    resource = EngineIOResource(server.manager)
    Forwarder(resource, link, timeout=1.0).start()

See :mod:`txrealtime.forwarding.forwarder` for how it works.
"""

from .forwarder import Forwarder

__all__ = ["Forwarder"]
