"""The benchmark handlers on python-socketio with aiohttp: python -m bench.apps.pysio_aiohttp PORT."""

import sys

import socketio
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)


@sio.event
async def connect(sid, environ, auth=None):
    await sio.enter_room(sid, "room")


@sio.on("echo")
async def echo(sid, data):
    return data


@sio.on("broadcast")
async def broadcast(sid, data):
    await sio.emit("b", data, room="room")
    return True


if __name__ == "__main__":
    app = web.Application()
    sio.attach(app)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
