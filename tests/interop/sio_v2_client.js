// Drives socket.io-client 2.x (Engine.IO v3, Socket.IO v4) against a server with allowEIO3:
// tests/socketio/app.py on txrealtime, or sio_server.js on Node with ALLOW_EIO3=1.
// Usage: node sio_v2_client.js URL SCENARIO polling|websocket|upgrade|polling-b64|websocket-b64
// Prints one JSON line with what the client saw, then exits.
const io = require("socket.io-client-v2");
const ioV4 = require("socket.io-client").io;
const { ack, next, plain, upgraded: upgradedIn } = require("./peer");

const [url, scenario, mode] = process.argv.slice(2);
const upgraded = (socket) => upgradedIn(socket, mode);
const transports = {
  polling: ["polling"],
  "polling-b64": ["polling"],
  websocket: ["websocket"],
  "websocket-b64": ["websocket"],
  upgrade: ["polling", "websocket"],
}[mode];
const forceBase64 = mode.endsWith("-b64");
const report = {};

function client(nsp = "/", opts = {}) {
  return io(url + nsp, { transports, forceNew: true, reconnection: false, forceBase64, ...opts });
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("error", (err) => reject(new Error("refused: " + JSON.stringify(err))));
    socket.once("connect_error", (err) => reject(err));
  });
}

// A v2 client learns of a refusal through an "error" event carrying the CONNECT_ERROR data.
function refused(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error("unexpectedly connected to " + socket.nsp)));
    socket.once("error", (err) => resolve(plain(err)));
  });
}

const scenarios = {
  async basic() {
    const s = client("/");
    await connected(s);
    report.id = s.id;
    report.sameAsEngine = s.id === s.io.engine.id;
    const echoed = next(s, "echo");
    s.emit("echo", "hello ☃ 𝄞", Buffer.from([1, 2, 3]), { nested: [Buffer.from([4])], n: 1.5 });
    report.echo = await echoed;
    report.ack = await ack(s, "ack", 1, "two", Buffer.from([5]));
    s.on("question", (value, callback) => callback(value + 1, Buffer.from([9])));
    const answer = next(s, "answer");
    s.emit("ask me", 41);
    report.answer = await answer;
    await upgraded(s);
    report.afterUpgrade = await ack(s, "ack", "still here", Buffer.from([7]));
    report.transport = s.io.engine.transport.name;
    // Heartbeats: the client pings every pingInterval (1 s); three of them must be answered.
    let pongs = 0;
    s.io.engine.on("pong", () => pongs++);
    await new Promise((resolve) => {
      const check = setInterval(() => {
        if (pongs >= 3) {
          clearInterval(check);
          resolve();
        }
      }, 50);
    });
    report.pongs = pongs >= 3;
    report.afterPings = await ack(s, "ack", "alive");
    const gone = next(s, "disconnect");
    s.emit("disconnect me");
    report.disconnect = await gone;
    s.close();
  },

  async namespaces() {
    const custom = client("/custom");
    await connected(custom);
    report.customId = custom.id;
    report.customIdShape = custom.id === "/custom#" + custom.io.engine.id;
    report.custom = await ack(custom, "ack", "custom");
    const admin = client("/admin", { query: { token: "s3cret" } });
    await connected(admin);
    report.admin = await ack(admin, "ack", "admin");
    report.rejected = await refused(client("/admin", { query: { token: "wrong" } }));
    report.invalid = await refused(client("/nowhere"));
    const dyn = client("/dyn-42");
    await connected(dyn);
    report.dyn = await ack(dyn, "ack", "dyn");
    for (const s of [custom, admin, dyn]) s.close();
  },

  async rooms() {
    const a = client("/");
    const b = client("/");
    const c = client("/");
    await Promise.all([a, b, c].map(connected));
    const seen = { a: [], b: [], c: [] };
    for (const [name, s] of Object.entries({ a, b, c })) {
      s.on("room message", (...args) => seen[name].push(plain(["room message", ...args])));
      s.on("broadcast", (...args) => seen[name].push(plain(["broadcast", ...args])));
    }
    report.aRooms = await ack(a, "join", "r1");
    report.bRooms = await ack(b, "join", "r1");
    await ack(a, "to room", "r1", "hi room");
    await ack(a, "broadcast", Buffer.from([1, 2]));
    await ack(a, "ack"); // the server answered: what it sent before has arrived
    await ack(b, "ack");
    await ack(c, "ack");
    report.seen = seen;
    for (const s of [a, b, c]) s.close();
  },

  // A v2 and a v4 client in the same room: one broadcast reaches both, each in its own framing.
  async mixed() {
    const old = client("/");
    const current = ioV4(url, { transports, forceNew: true, reconnection: false });
    const sender = ioV4(url, { transports, forceNew: true, reconnection: false });
    await Promise.all([connected(old), connected(current), connected(sender)]);
    await ack(old, "join", "mixed");
    await new Promise((resolve) => current.emit("join", "mixed", resolve));
    const got = { old: next(old, "room message"), current: next(current, "room message") };
    await new Promise((resolve) => sender.emit("to room", "mixed", { text: "hi", bytes: Buffer.from([1, 2, 3]) }, resolve));
    report.old = await got.old;
    report.current = await got.current;
    const broadcast = { old: next(old, "broadcast"), current: next(current, "broadcast") };
    await new Promise((resolve) => sender.emit("broadcast", "text only", resolve));
    report.oldBroadcast = await broadcast.old;
    report.currentBroadcast = await broadcast.current;
    for (const s of [old, current, sender]) s.close();
  },
};

const timer = setTimeout(() => {
  report.error = "timed out";
  console.log(JSON.stringify(report));
  process.exit(1);
}, 30000);

scenarios[scenario]()
  .then(() => {
    clearTimeout(timer);
    console.log(JSON.stringify(report));
    process.exit(0);
  })
  .catch((err) => {
    clearTimeout(timer);
    report.error = String((err && err.stack) || err);
    console.log(JSON.stringify(report));
    process.exit(1);
  });
