"""The benchmark handlers for python-socketio, shared by its ASGI and aiohttp servers."""

import socketio


def install(sio: socketio.AsyncServer) -> socketio.AsyncServer:
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

    return sio
