// Records the raw messages Node's sharded adapter (createShardedAdapter of @socket.io/redis-adapter) publishes.
//
// Usage: node capture_sharded_adapter.js REDIS_URL > ../adapters/fixtures/node_sharded_adapter.json
// (a scratch redis-server 7, e.g. `redis-server --port 6390 --save ''`: sharded pub/sub works on one server too).
//
// Two socket.io servers ("io1", "io2") share one Redis through the sharded adapter (subscriptionMode
// "dynamic", the default); one client is connected to io2 and in rooms room1 and room2, so every request io1
// makes is answered. A raw subscriber holds every shard channel the adapters use (the namespaces' channels,
// A recorder cannot subscribe to the namespaces' channels (the adapters count their subscribers as servers, and
// would wait for its answers), so it watches with MONITOR and records every SPUBLISH, base64-encoded, labelled
// with the step that produced it: after each step (awaited until its answers are in) a marker is published on
// `socket.io-capture#`; MONITOR shows commands in the order Redis ran them, so a step's messages all come
// before its marker. The output also names the adapters' uids and the client's id.
const http = require("http");
const net = require("net");
const fs = require("fs");
const path = require("path");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createClient } = require("redis");
const { createShardedAdapter } = require("@socket.io/redis-adapter");

const MARKER = "socket.io-capture#";

function version(name) {
  const file = path.join(__dirname, "node_modules", name, "package.json");
  return JSON.parse(fs.readFileSync(file, "utf8")).version;
}

async function server(url) {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createShardedAdapter(pub, sub) });
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return { io, httpServer, pub, sub };
}

// The arguments of one MONITOR line (Redis writes them quoted, escaped as sdscatrepr does).
function monitorArgs(line) {
  const args = [];
  let i = line.indexOf('"');
  while (i >= 0 && i < line.length) {
    const bytes = [];
    i += 1;
    while (line[i] !== '"') {
      if (line[i] === "\\") {
        const c = line[i + 1];
        if (c === "x") {
          bytes.push(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
          continue;
        }
        bytes.push({ n: 10, r: 13, t: 9, a: 7, b: 8 }[c] ?? c.charCodeAt(0));
        i += 2;
        continue;
      }
      bytes.push(line.charCodeAt(i));
      i += 1;
    }
    args.push(Buffer.from(bytes));
    i = line.indexOf('"', i + 1);
  }
  return args;
}

function monitor(url, onCommand) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname, () => socket.write("MONITOR\r\n"));
    let buffer = "";
    socket.setEncoding("latin1");
    socket.on("data", (data) => {
      buffer += data;
      let end;
      while ((end = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (line === "+OK") resolve(socket);
        else onCommand(monitorArgs(line));
      }
    });
  });
}

async function main() {
  const url = process.argv[2];
  const messages = [];
  let step = "setup";
  const markers = new Map();

  const one = await server(url);
  const two = await server(url);
  const io1 = one.io;
  const io2 = two.io;
  io1.of("/chat");
  io2.of("/chat");
  io2.on("connection", (socket) => {
    socket.join(["room1", "room2"]);
    socket.data = { name: "client on io2", bytes: [1, 2] };
  });
  io2.on("ping", (n, callback) => {
    if (typeof callback === "function") callback({ pong: n });
  });
  io2.on("hello", () => {});

  const record = (args) => {
    if (args[0].toString().toUpperCase() !== "SPUBLISH") return;
    const channel = args[1].toString();
    const message = args[2];
    if (channel === MARKER) {
      const resolve = markers.get(message.toString());
      markers.delete(message.toString());
      if (resolve) resolve();
      return;
    }
    messages.push({ step, channel, base64: message.toString("base64") });
  };
  const uids = { io1: io1.of("/").adapter.uid, io2: io2.of("/").adapter.uid, io1_chat: io1.of("/chat").adapter.uid };
  const recorder = await monitor(url, record);
  const control = createClient({ url });
  await control.connect();

  const client = connect(`http://127.0.0.1:${two.httpServer.address().port}`, {
    transports: ["websocket"],
    auth: { token: "abc" },
    query: { q: "1" },
  });
  client.on("question", (n, callback) => callback(n + 1));
  await new Promise((resolve) => client.on("connect", resolve));

  async function run(name, action) {
    step = name;
    await action();
    const seen = new Promise((resolve) => markers.set(name, resolve));
    await control.sPublish(MARKER, name);
    await seen;
  }

  await run("broadcast", async () => {
    io1.emit("plain", 1, "two", { three: [3] });
  });
  await run("broadcast_room", async () => {
    io1.to("room1").emit("news", "hello", { n: 1.5 });
  });
  await run("broadcast_room_except_binary", async () => {
    io1.to("room1").except("room3").emit("news", "hello", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
  });
  await run("broadcast_rooms_volatile", async () => {
    io1.to(["room1", "room2"]).volatile.emit("rooms", null, true, 1.5, -7);
  });
  await run("broadcast_namespace", async () => {
    io1.of("/chat").compress(false).emit("chat", "hi");
  });
  await run("fetch_sockets", async () => {
    const sockets = await io1.in("room1").except("room3").fetchSockets();
    if (sockets.length !== 1) throw new Error(`fetchSockets found ${sockets.length} sockets`);
  });
  await run("server_side_emit", async () => {
    io1.serverSideEmit("hello", 1, "two");
  });
  await run("server_side_emit_with_ack", async () => {
    const answers = await io1.serverSideEmitWithAck("ping", 42);
    if (answers.length !== 1) throw new Error(`serverSideEmitWithAck got ${answers.length} answers`);
  });
  await run("sockets_join", async () => {
    io1.in("room1").except("room3").socketsJoin(["x", "y"]);
  });
  await run("sockets_leave", async () => {
    io1.socketsLeave("x");
  });
  await run("broadcast_with_ack", async () => {
    const answers = await io1.timeout(5000).emitWithAck("question", 41);
    if (answers.length !== 1 || answers[0] !== 42) throw new Error(`emitWithAck got ${answers}`);
  });
  await run("disconnect_sockets", async () => {
    io1.in("room2").disconnectSockets(true);
  });

  const report = {
    generator: "tests/interop/capture_sharded_adapter.js",
    packages: Object.fromEntries(
      ["socket.io", "socket.io-adapter", "@socket.io/redis-adapter", "notepack.io", "redis"].map((n) => [
        n,
        version(n),
      ]),
    ),
    uids,
    client: client.id,
    messages,
  };
  console.log(JSON.stringify(report, null, 1));

  client.close();
  for (const s of [one, two]) {
    s.io.close();
  }
  recorder.destroy();
  await Promise.all([one.pub, one.sub, two.pub, two.sub, control].map((c) => c.quit().catch(() => {})));
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
