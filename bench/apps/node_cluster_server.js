// The benchmark handlers on Node's socket.io 4.x in cluster mode, as its docs set it up:
// @socket.io/sticky routes each connection by sid, @socket.io/cluster-adapter shares rooms over IPC.
// node node_cluster_server.js PORT WORKERS   (needs bench/node_modules on NODE_PATH for @socket.io/*)
const cluster = require("cluster");
const http = require("http");
const { Server } = require("socket.io");
const { setupMaster, setupWorker } = require("@socket.io/sticky");
const { createAdapter, setupPrimary } = require("@socket.io/cluster-adapter");

const [port, workers] = [Number(process.argv[2]), Number(process.argv[3] || 2)];

if (cluster.isPrimary) {
  const httpServer = http.createServer();
  setupMaster(httpServer, { loadBalancingMethod: "least-connection" });
  setupPrimary();
  cluster.setupPrimary({ serialization: "advanced" });
  httpServer.listen(port, "127.0.0.1");
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on("SIGTERM", () => {
    for (const id in cluster.workers) cluster.workers[id].kill();
    process.exit(0);
  });
} else {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { serveClient: false });
  io.adapter(createAdapter());
  setupWorker(io);
  io.on("connection", (socket) => {
    socket.join("room");
    socket.on("echo", (data, callback) => callback(data));
    socket.on("broadcast", (data, callback) => {
      io.to("room").emit("b", data);
      callback(true);
    });
  });
}
