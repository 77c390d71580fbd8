"""The benchmark handlers on python-socketio, served as an ASGI app (uvicorn)."""

import os

import socketio

from bench.apps.pysio_handlers import install

sio = install(socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False,
                                   serializer=os.environ.get("BENCH_SERIALIZER", "default")))
app = socketio.ASGIApp(sio)
