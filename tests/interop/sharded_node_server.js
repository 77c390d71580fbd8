// A Node socket.io 4.x server on the sharded adapter (createShardedAdapter of @socket.io/redis-adapter) and a
// Redis Cluster (redis 4's createCluster), for the mixed sharded-cluster tests (the app: cluster_node_app.js).
// Usage: [PORT=0] node sharded_node_server.js REDIS_URL_OF_ANY_NODE [PARSER [SUBSCRIPTION_MODE]]; prints
// {"port": N} once listening. SUBSCRIPTION_MODE is the adapter's subscriptionMode (dynamic by default).
const http = require("http");
const { Server } = require("socket.io");
const { createCluster } = require("redis");
const { createShardedAdapter } = require("@socket.io/redis-adapter");
const { setup, listen, run } = require("./cluster_node_app");

run(async () => {
  const url = process.argv[2];
  const pubClient = createCluster({ rootNodes: [{ url }] });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);
  const httpServer = http.createServer();
  const subscriptionMode = process.argv[4] || "dynamic";
  const io = new Server(httpServer, { adapter: createShardedAdapter(pubClient, subClient, { subscriptionMode }) });
  setup(io);
  listen(io, httpServer);
});
