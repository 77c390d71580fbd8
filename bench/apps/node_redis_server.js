// The benchmark handlers on Node's socket.io 4.x with a Redis adapter, for bench/adapters.py:
//   node node_redis_server.js PORT ADAPTER REDIS_URL     ADAPTER: redis | redis-streams | redis-sharded
// redis: @socket.io/redis-adapter (createAdapter); redis-streams: @socket.io/redis-streams-adapter;
// redis-sharded: createShardedAdapter on a Redis Cluster (redis 4's createCluster). The packages come from
// tests/interop/node_modules through NODE_PATH. Prints {"port": N} once listening.
const http = require("http");
const { Server } = require("socket.io");
const { createClient, createCluster } = require("redis");

async function adapter(kind, url) {
  if (kind === "redis-streams") {
    const client = createClient({ url });
    await client.connect();
    return require("@socket.io/redis-streams-adapter").createAdapter(client);
  }
  if (kind === "redis-sharded") {
    const pub = createCluster({ rootNodes: [{ url }] });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    return require("@socket.io/redis-adapter").createShardedAdapter(pub, sub);
  }
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  return require("@socket.io/redis-adapter").createAdapter(pub, sub);
}

async function main() {
  const [port, kind, url] = process.argv.slice(2);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { serveClient: false, perMessageDeflate: false, adapter: await adapter(kind, url) });
  io.on("connection", (socket) => {
    socket.join("room");
    socket.on("broadcast", (data, callback) => {
      io.to("room").emit("b", data);
      callback(true);
    });
  });
  httpServer.listen(Number(port), "127.0.0.1", () => console.log(JSON.stringify({ port: httpServer.address().port })));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
