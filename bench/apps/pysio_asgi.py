"""The benchmark handlers on python-socketio, served as an ASGI app (uvicorn)."""

import socketio

sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)


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


app = socketio.ASGIApp(sio)
