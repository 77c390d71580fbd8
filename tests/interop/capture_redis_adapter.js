// Records the raw messages Node's @socket.io/redis-adapter (and @socket.io/redis-emitter) publish.
//
// Usage: node capture_redis_adapter.js REDIS_URL > ../adapters/fixtures/node_redis_adapter.json
// (with a scratch redis-server, e.g. `redis-server --port 6390 --save ''`).
//
// Two socket.io servers ("io1", "io2") share one Redis through the adapter; one client is connected
// to io2, so every request io1 makes is answered. A raw subscriber on the pattern `socket.io*`
// records every message, base64-encoded, labelled with the step that produced it: after each step
// (awaited until its answers are in) a marker is published on `socket.io-capture#`, and Redis
// delivers messages in publication order, so a step's messages all arrive before its marker.
// The output also names the adapters' uids and the client's socket id, for the tests to check.
const http = require("http");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");

const MARKER = "socket.io-capture#";

const fs = require("fs");
const path = require("path");

function version(name) {
  // Read from node_modules: some packages do not export their package.json.
  const file = path.join(__dirname, "node_modules", name, "package.json");
  return JSON.parse(fs.readFileSync(file, "utf8")).version;
}

async function server(url) {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pub, sub) });
  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  return { io, httpServer, pub, sub };
}

async function main() {
  const url = process.argv[2];
  const messages = [];
  let step = "setup";

  const recorder = createClient({ url });
  await recorder.connect();
  const markers = new Map();
  await recorder.pSubscribe(
    "socket.io*",
    (message, channel) => {
      channel = channel.toString();
      if (channel === MARKER) {
        const resolve = markers.get(message.toString());
        markers.delete(message.toString());
        if (resolve) resolve();
        return;
      }
      messages.push({ step, channel, base64: Buffer.from(message).toString("base64") });
    },
    true,
  );
  const control = createClient({ url });
  await control.connect();

  const one = await server(url);
  const two = await server(url);
  const io1 = one.io;
  const io2 = two.io;
  io2.on("connection", (socket) => {
    socket.join(["room1", "room2"]);
    socket.data = { name: "client on io2", bytes: [1, 2] };
  });
  io2.on("ping", (n, callback) => {
    if (typeof callback === "function") callback({ pong: n });
  });
  io2.on("hello", () => {});

  const client = connect(`http://127.0.0.1:${two.httpServer.address().port}`, {
    transports: ["websocket"],
    auth: { token: "abc" },
    query: { q: "1" },
  });
  client.on("question", (n, callback) => callback(n + 1));
  await new Promise((resolve) => client.on("connect", resolve));

  const emitter = new Emitter(control);

  // Runs one step, then waits for its marker: every message of the step has been recorded by then.
  async function run(name, action) {
    step = name;
    await action();
    const seen = new Promise((resolve) => markers.set(name, resolve));
    await control.publish(MARKER, name);
    await seen;
  }

  await run("broadcast", async () => {
    io1.emit("plain", 1, "two", { three: [3] });
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
  await run("all_rooms", async () => {
    await io1.of("/").adapter.allRooms();
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
  await run("emitter_broadcast", async () => {
    emitter.to("room1").except("room3").emit("emitted", { ok: true }, Buffer.from([9]));
  });
  await run("emitter_sockets_join", async () => {
    emitter.in("room1").socketsJoin("z");
  });
  await run("emitter_sockets_leave", async () => {
    emitter.socketsLeave(["z"]);
  });
  await run("emitter_server_side_emit", async () => {
    emitter.serverSideEmit("hello", "from emitter");
  });
  await run("emitter_disconnect_sockets", async () => {
    emitter.in("nobody").disconnectSockets();
  });
  await run("disconnect_sockets", async () => {
    io1.in("room2").disconnectSockets(true);
  });

  const report = {
    generator: "tests/interop/capture_redis_adapter.js",
    packages: Object.fromEntries(
      ["socket.io", "@socket.io/redis-adapter", "@socket.io/redis-emitter", "notepack.io", "redis"].map((n) => [
        n,
        version(n),
      ]),
    ),
    uids: { io1: io1.of("/").adapter.uid, io2: io2.of("/").adapter.uid, io1_chat: io1.of("/chat").adapter.uid },
    client: client.id,
    messages,
  };
  console.log(JSON.stringify(report, null, 1));

  client.close();
  for (const s of [one, two]) {
    s.io.close();
  }
  await Promise.all([one.pub, one.sub, two.pub, two.sub, recorder, control].map((c) => c.quit().catch(() => {})));
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
