"""The benchmark handlers on python-socketio with aiohttp: python -m bench.apps.pysio_aiohttp PORT."""

import os
import sys

import socketio
from aiohttp import web

from bench.apps.pysio_handlers import install

sio = install(socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False,
                                   serializer=os.environ.get("BENCH_SERIALIZER", "default")))

if __name__ == "__main__":
    app = web.Application()
    sio.attach(app)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
