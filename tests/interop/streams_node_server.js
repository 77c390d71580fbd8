// A Node socket.io 4.x server on @socket.io/redis-streams-adapter 0.3.1 and one Redis (redis 4's createClient),
// connection state recovery on, for the mixed streams-cluster tests.
// Usage: [RECOVERY_MS=120000] [PORT=0] node streams_node_server.js REDIS_URL; prints {"port": N} once listening.
const http = require("http");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-streams-adapter");

async function main() {
  const url = process.argv[2];
  const maxDisconnectionDuration = Number(process.env.RECOVERY_MS || 120000);
  const client = createClient({ url });
  await client.connect();
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(client),
    connectionStateRecovery: { maxDisconnectionDuration },
  });

  const join = (socket) => {
    socket.on("join", (room, callback) => {
      socket.join(room);
      callback([...socket.rooms].filter((r) => r !== socket.id).sort());
    });
  };
  io.of("/chat").on("connection", join);
  io.on("connection", (socket) => {
    join(socket);
    socket.data = { node: "node.js" };
    socket.on("broadcast", (...args) => {
      const callback = args.pop();
      io.emit("from node", ...args);
      callback(true);
    });
    socket.on("to room", (room, ...args) => {
      const callback = args.pop();
      io.to(room).emit("room from node", ...args);
      callback(true);
    });
    socket.on("fetch", async (callback) => {
      const sockets = await io.fetchSockets();
      callback(sockets.map((s) => ({ id: s.id, data: s.data, rooms: [...s.rooms].sort() })));
    });
    socket.on("ask servers", async (callback) => {
      callback(await io.serverSideEmitWithAck("hello from node", 9));
    });
    socket.on("ask clients", async (callback) => {
      callback(await io.timeout(5000).emitWithAck("question", 1));
    });
  });
  // A server-side emit (from the emitter, say) is passed on to this server's own clients.
  io.on("note", (...args) => io.local.emit("note", ...args));
  io.on("hello from python", (value, callback) => {
    if (typeof callback === "function") callback({ node: "says hi", value });
  });

  httpServer.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
    console.log(JSON.stringify({ port: httpServer.address().port }));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
