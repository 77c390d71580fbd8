// Records what Node's @socket.io/redis-streams-adapter writes: the stream's entries, the messages it publishes,
// and a kept session.
//
// Usage: node capture_streams_adapter.js REDIS_URL > ../adapters/fixtures/node_streams_adapter.json
// (a scratch, empty redis-server, e.g. `redis-server --port 6390 --save ''`).
//
// Two socket.io servers ("io1", "io2", connection state recovery on) share one Redis through the streams adapter;
// one client is connected to io2, in rooms room1 and room2, so every request io1 makes is answered. The stream
// is read back with XRANGE (every entry's fields, in order); a raw subscriber holds the pattern `socket.io#*`
// (pattern subscribers are not counted as servers) and records every published message, base64-encoded. Then
// the client's connection is cut, so io2 keeps its session (SET ... PX), which is read back with GET.
const http = require("http");
const fs = require("fs");
const path = require("path");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-streams-adapter");

function version(name) {
  const file = path.join(__dirname, "node_modules", name, "package.json");
  return JSON.parse(fs.readFileSync(file, "utf8")).version;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function server(url) {
  const client = createClient({ url });
  await client.connect();
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(client),
    connectionStateRecovery: { maxDisconnectionDuration: 60000 },
  });
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return { io, httpServer, client };
}

async function main() {
  const url = process.argv[2];
  const published = [];
  const raw = createClient({ url });
  await raw.connect();
  const watcher = raw.duplicate();
  await watcher.connect();
  await watcher.pSubscribe(
    "socket.io#*",
    (message, channel) => published.push({ channel: channel.toString(), message: message.toString("base64") }),
    true,
  );
  const s1 = await server(url);
  const s2 = await server(url);
  s2.io.on("connection", (socket) => {
    socket.data = { user: "ann", n: 1 };
    socket.join(["room1", "room2"]);
  });
  s2.io.on("ping-all", (arg, ack) => ack({ pong: arg }));
  const port = s2.httpServer.address().port;
  const client = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"] });
  client.on("with-ack", (arg, ack) => ack(`got ${arg}`));
  await new Promise((resolve) => client.on("connect", resolve));
  await sleep(300);
  const io = s1.io;
  io.emit("hello", "world", 1);
  io.to("room1").except("room3").emit("room", { a: [1, 2.5, null, true] });
  io.to("room2").emit("bin", Buffer.from([1, 2, 3]), "text");
  io.volatile.emit("volatile", 1);
  io.compress(false).emit("nocompress", "x");
  await sleep(200);
  const sockets = await io.in("room1").fetchSockets();
  const answers = await io.serverSideEmitWithAck("ping-all", 42);
  const acks = await io.timeout(2000).emitWithAck("with-ack", "x");
  io.in("room1").socketsJoin("room4");
  io.in("room4").socketsLeave("room1");
  io.except("room5").timeout(1000).emit("timed", 1);
  await sleep(200);
  const sid = client.id;
  client.io.engine.close(); // a transport close: io2 keeps the session
  await sleep(300);
  const keys = await raw.keys("sio:session:*");
  const session = keys.length ? await raw.get(keys[0]) : null;
  const entries = await raw.xRange("socket.io", "-", "+");
  process.stdout.write(
    JSON.stringify(
      {
        versions: {
          "socket.io": version("socket.io"),
          "@socket.io/redis-streams-adapter": version("@socket.io/redis-streams-adapter"),
          "socket.io-adapter": version("socket.io-adapter"),
        },
        uids: { io1: io.of("/").adapter.uid, io2: s2.io.of("/").adapter.uid },
        sid,
        fetched: sockets.map((s) => s.id),
        answers,
        acks,
        entries,
        published,
        session: session === null ? null : { key: keys[0], value: session },
      },
      null,
      1,
    ) + "\n",
  );
  client.close();
  for (const s of [s1, s2]) {
    s.io.close();
  }
  await watcher.quit();
  await raw.quit();
  setTimeout(() => process.exit(0), 200);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
