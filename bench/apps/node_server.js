// The benchmark handlers on Node's socket.io 4.x: node node_server.js PORT
const http = require("http");
const { Server } = require("socket.io");

const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false });
io.on("connection", (socket) => {
  socket.join("room");
  socket.on("echo", (data, callback) => callback(data));
  socket.on("broadcast", (data, callback) => {
    io.to("room").emit("b", data);
    callback(true);
  });
});
httpServer.listen(Number(process.argv[2]), "127.0.0.1");
