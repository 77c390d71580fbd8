// A Node socket.io 4.x server using @socket.io/redis-adapter, for the mixed-cluster tests.
// Usage: node redis_node_server.js REDIS_URL [json|msgpack]; prints {"port": N} once listening and subscribed.
// With msgpack, its clients speak socket.io-msgpack-parser.
const http = require("http");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-adapter");

async function main() {
  const url = process.argv[2];
  const pubClient = createClient({ url });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);
  const httpServer = http.createServer();
  const parser = process.argv[3] === "msgpack" ? { parser: require("socket.io-msgpack-parser") } : {};
  const io = new Server(httpServer, { adapter: createAdapter(pubClient, subClient), ...parser });

  const join = (socket) => {
    socket.on("join", (room, callback) => {
      socket.join(room);
      callback([...socket.rooms].filter((r) => r !== socket.id).sort());
    });
  };
  io.of("/chat").on("connection", join);
  io.on("connection", (socket) => {
    join(socket);
    socket.on("broadcast", (...args) => {
      const callback = args.pop();
      io.emit("from node", ...args);
      callback(true);
    });
    socket.on("ack", (...args) => {
      const callback = args.pop();
      callback("got", ...args);
    });
    // What tests/forwarding/app.py answers, for the forwarding tests' controls.
    socket.on("whoami", (callback) => callback({ pid: process.pid, sid: socket.conn.id }));
    socket.on("echo", (...args) => args.pop()(args));
    socket.on("shout", (room, text, callback) => {
      io.to(room).emit("news", text, process.pid);
      callback("sent");
    });
  });
  // A server-side emit (from the emitter, say) is passed on to this server's own clients.
  io.on("note", (...args) => io.local.emit("note", ...args));
  io.on("hello from python", (value, callback) => {
    if (typeof callback === "function") callback({ node: "says hi", value });
  });

  httpServer.listen(0, "127.0.0.1", () => {
    console.log(JSON.stringify({ port: httpServer.address().port }));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
