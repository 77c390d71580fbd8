// A Node socket.io 4.x server with the same handlers as tests/socketio/app.py.
// Usage: node sio_server.js [--parser msgpack] [PORT] [RECOVERY_MS]; prints {"port": N} once listening, then serves
// until killed. With RECOVERY_MS, connection state recovery is on with that window; with --parser msgpack, packets
// are socket.io-msgpack-parser's; with ALLOW_EIO3=1 in the environment,
// socket.io-client 2.x clients are served too (allowEIO3); with TRANSPORTS=websocket (or polling), only that
// transport is (the other one refused, as a proxy that blocks it would).
const http = require("http");
const { Server } = require("socket.io");

const args = process.argv.slice(2);
const parserAt = args.indexOf("--parser");
const parser = parserAt >= 0 ? args.splice(parserAt, 2)[1] : "json";
const port = Number(args[0] || 0);
const recovery = args[1] ? { maxDisconnectionDuration: Number(args[1]), skipMiddlewares: true } : undefined;
const httpServer = http.createServer();
const io = new Server(httpServer, {
  pingInterval: 1000,
  pingTimeout: 2000,
  connectionStateRecovery: recovery,
  ...(parser === "msgpack" ? { parser: require("socket.io-msgpack-parser") } : {}),
  allowEIO3: process.env.ALLOW_EIO3 === "1",
  ...(process.env.TRANSPORTS ? { transports: process.env.TRANSPORTS.split(",") } : {}),
});

function common(socket) {
  socket.on("echo", (...args) => socket.emit("echo", ...args));
  socket.on("echo uncompressed", (...args) => socket.compress(false).emit("echo", ...args));
  socket.on("ack", (...args) => {
    const callback = args.pop();
    callback("got", ...args);
  });
  socket.on("ask me", async (value) => {
    const answer = await socket.timeout(10000).emitWithAck("question", value);
    socket.emit("answer", answer);
  });
  socket.on("join", (room, callback) => {
    socket.join(room);
    callback([...socket.rooms].filter((r) => r !== socket.id).sort());
  });
  socket.on("to room", (room, message, callback) => {
    socket.nsp.to(room).emit("room message", room, message);
    callback(true);
  });
  socket.on("volatile to room", (room, message, callback) => {
    socket.nsp.volatile.to(room).emit("room message", room, message);
    callback(true);
  });
  socket.on("broadcast", (message, callback) => {
    socket.broadcast.emit("broadcast", message);
    callback(true);
  });
  socket.on("disconnect me", () => socket.disconnect());
}

io.on("connection", common);
io.of("/custom").on("connection", common);
const admin = io.of("/admin");
admin.use((socket, next) => {
  if (socket.handshake.auth.token !== "s3cret") {
    const err = new Error("not authorized");
    err.data = { code: 401 };
    return next(err);
  }
  next();
});
admin.on("connection", common);
io.of(/^\/dyn-\d+$/).on("connection", common);

httpServer.listen(port, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: httpServer.address().port }));
});
