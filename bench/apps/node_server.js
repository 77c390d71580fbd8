// The benchmark handlers on Node's socket.io 4.x: node node_server.js PORT [msgpack]
// (msgpack: socket.io-msgpack-parser, from bench/node_modules through NODE_PATH).
// With BENCH_DEFLATE=1, permessage-deflate is on with Node's threshold (1024 bytes).
const http = require("http");
const { Server } = require("socket.io");

const httpServer = http.createServer();
const parser = process.argv[3] === "msgpack" ? { parser: require("socket.io-msgpack-parser") } : {};
const perMessageDeflate = process.env.BENCH_DEFLATE === "1" ? { threshold: 1024 } : false;
const io = new Server(httpServer, { serveClient: false, perMessageDeflate, ...parser });
io.on("connection", (socket) => {
  socket.join("room");
  socket.on("echo", (data, callback) => callback(data));
  socket.on("broadcast", (data, callback) => {
    io.to("room").emit("b", data);
    callback(true);
  });
});
httpServer.listen(Number(process.argv[2]), "127.0.0.1");
