// What the Node socket.io servers of the mixed-cluster tests share (streams_node_server.js on
// @socket.io/redis-streams-adapter, sharded_node_server.js on createShardedAdapter): the app each runs, and
// how it listens and stops.
//
// The app: "join" a room (answering with the socket's rooms), on "/" and "/chat"; on "/" also "broadcast",
// "to room", "fetch", "ask servers", "ask clients" (the cluster features, answered), and what
// tests/forwarding/app.py answers, for the failover client: "whoami" ({pid}), "shout" (a room broadcast of
// "news", text, pid), "rooms" (its rooms but its own id), "keep" (a value for socket.data) and "data". Server-side emits of "note" go to this server's
// own clients; "hello from python" is answered.

function setup(io) {
  const join = (socket) => {
    socket.on("join", (room, callback) => {
      socket.join(room);
      callback([...socket.rooms].filter((r) => r !== socket.id).sort());
    });
  };
  io.of("/chat").on("connection", join);
  io.on("connection", (socket) => {
    join(socket);
    if (!socket.recovered) socket.data = { node: "node.js" }; // a recovered socket has its data back
    socket.on("keep", (value, callback) => {
      socket.data = value;
      callback(true);
    });
    socket.on("data", (callback) => callback(socket.data));
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
    socket.on("whoami", (callback) => callback({ pid: process.pid, sid: socket.conn.id }));
    socket.on("shout", (room, text, callback) => {
      io.to(room).emit("news", text, process.pid);
      callback("sent");
    });
    socket.on("rooms", (callback) => callback([...socket.rooms].filter((r) => r !== socket.id).sort()));
  });
  // A server-side emit (from the emitter, say) is passed on to this server's own clients.
  io.on("note", (...args) => io.local.emit("note", ...args));
  io.on("hello from python", (value, callback) => {
    if (typeof callback === "function") callback({ node: "says hi", value });
  });
}

// Listens on $PORT (a free one if unset) and prints {"port": N}; on SIGTERM, closes io (its sockets
// disconnect with "server shutting down", so a server with recovery keeps their sessions) and exits.
function listen(io, httpServer) {
  process.on("SIGTERM", () => {
    io.close();
    setTimeout(() => process.exit(0), 500);
  });
  httpServer.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
    console.log(JSON.stringify({ port: httpServer.address().port }));
  });
}

function run(main) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { setup, listen, run };
