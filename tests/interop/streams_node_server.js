// A Node socket.io 4.x server on @socket.io/redis-streams-adapter 0.3.1 and one Redis (redis 4's createClient),
// connection state recovery on, for the mixed streams-cluster tests (the app: cluster_node_app.js).
// Usage: [RECOVERY_MS=120000] [PORT=0] node streams_node_server.js REDIS_URL; prints {"port": N} once listening.
const http = require("http");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-streams-adapter");
const { setup, listen, run } = require("./cluster_node_app");

run(async () => {
  const url = process.argv[2];
  const maxDisconnectionDuration = Number(process.env.RECOVERY_MS || 120000);
  const client = createClient({ url });
  await client.connect();
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(client),
    connectionStateRecovery: { maxDisconnectionDuration },
  });
  setup(io);
  listen(io, httpServer);
});
