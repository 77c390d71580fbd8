"""Emits one event through txrealtime.emitter.Emitter (redis-py), as a Django view or a Celery task would.

Usage: python redis_py_emit.py REDIS_URL ROOM EVENT JSON_ARG; prints {"received_by": N, "modules": [...]}, the
Redis subscribers that received it and which of Twisted's reactor and txrealtime's Redis client got imported
(none should).
"""

import json
import sys

from txrealtime.emitter import Emitter

url, room, event, arg = sys.argv[1:5]
with Emitter(url) as emitter:
    received_by = emitter.to(room).emit(event, json.loads(arg), b"\x01\x02\x03")
modules = sorted(m for m in ("twisted.internet.reactor", "txrealtime.redis.client") if m in sys.modules)
print(json.dumps({"received_by": received_by, "modules": modules}))
