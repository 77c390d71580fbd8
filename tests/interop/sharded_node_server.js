// A Node socket.io 4.x server on the sharded adapter (createShardedAdapter of @socket.io/redis-adapter) and a
// Redis Cluster (redis 4's createCluster), for the mixed sharded-cluster tests.
// Usage: node sharded_node_server.js REDIS_URL_OF_ANY_NODE; prints {"port": N} once listening.
const http = require("http");
const { Server } = require("socket.io");
const { createCluster } = require("redis");
const { createShardedAdapter } = require("@socket.io/redis-adapter");

async function main() {
  const url = process.argv[2];
  const pubClient = createCluster({ rootNodes: [{ url }] });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createShardedAdapter(pubClient, subClient) });

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

  httpServer.listen(0, "127.0.0.1", () => {
    console.log(JSON.stringify({ port: httpServer.address().port }));
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
