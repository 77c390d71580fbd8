// Node's engine.io 6.6 with the options a parity test gives, to compare its wire with txrealtime's
// (tests/engineio/test_node_parity.py). Usage: node eio_server.js '<JSON>'; prints {"port": N} once listening,
// then echoes every message until killed. The JSON holds engine.io's options (cors, initialPacket,
// addTrailingSlash, maxHttpBufferSize...), and:
//   "originList": [...]        cors.origin as a function allowing these origins;
//   "middleware": true         an engine.use() adding "X-Checked: yes" to every answer and answering ?deny=1 itself
//                              with 401 (an empty body), before engine.io looks at the request;
//   "denyQuery": true          an allowRequest refusing a handshake that has ?deny=REASON, with REASON as its message
//                              (callback(REASON, false)), and ?deny= (empty) without one (callback(null, false));
//   "initialPacketBytes": [..] initialPacket as a Buffer of these bytes (a binary message).
// After the first line it prints {"parked": SID} each time a polling GET of a session is held (after the
// handshake's own), so that a test knows a poll waits before it sends what that poll should see.
// Requests outside the endpoint get 404.
const http = require("http");
const { Server } = require("engine.io");

const options = JSON.parse(process.argv[2] || "{}");
const { originList, middleware, denyQuery, initialPacketBytes } = options;
delete options.originList;
delete options.middleware;
delete options.denyQuery;
delete options.initialPacketBytes;
if (originList) {
  options.cors = { ...(options.cors || {}), origin: (origin, callback) => callback(null, originList.includes(origin)) };
}
if (denyQuery) {
  options.allowRequest = (req, callback) => {
    const deny = new URL(req.url, "http://x").searchParams.get("deny");
    callback(deny || null, deny === null);
  };
}
if (initialPacketBytes) {
  options.initialPacket = Buffer.from(initialPacketBytes);
}
const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const engine = new Server(options);
if (middleware) {
  engine.use((req, res, next) => {
    res.setHeader("X-Checked", "yes");
    if (req.url.includes("deny=1")) {
      res.writeHead(401);
      res.end();
      return;
    }
    next();
  });
}
engine.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
  if (socket.transport.name === "polling") {
    socket.transport.on("ready", () => console.log(JSON.stringify({ parked: socket.id })));
  }
});
engine.attach(httpServer, options);
httpServer.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: httpServer.address().port })));
