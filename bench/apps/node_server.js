// The benchmark handlers on Node's socket.io 4.x: node node_server.js PORT
// With BENCH_DEFLATE=1, permessage-deflate is on with Node's threshold (1024 bytes).
const http = require("http");
const { Server } = require("socket.io");

const httpServer = http.createServer();
const perMessageDeflate = process.env.BENCH_DEFLATE === "1" ? { threshold: 1024 } : false;
const io = new Server(httpServer, { serveClient: false, perMessageDeflate });
io.on("connection", (socket) => {
  socket.join("room");
  socket.on("echo", (data, callback) => callback(data));
  socket.on("broadcast", (data, callback) => {
    io.to("room").emit("b", data);
    callback(true);
  });
});
httpServer.listen(Number(process.argv[2]), "127.0.0.1");
