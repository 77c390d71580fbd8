// Drives the official socket.io-client against tests/socketio/app.py.
// Usage: node sio_client.js URL SCENARIO polling|websocket|upgrade [json|msgpack]
// Prints one JSON line with what the client saw, then exits. With msgpack, the client uses socket.io-msgpack-parser.
const { io, Manager: BaseManager } = require("socket.io-client");

const [url, scenario, mode, parserName = "json"] = process.argv.slice(2);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];
const parser = parserName === "msgpack" ? { parser: require("socket.io-msgpack-parser") } : {};
const { ack, connected, next, plain, upgraded: upgradedIn } = require("./peer");
const upgraded = (socket) => upgradedIn(socket, mode);

class Manager extends BaseManager {
  constructor(uri, opts) {
    super(uri, { ...opts, ...parser });
  }
}
const report = {};

function refused(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error("unexpectedly connected to " + socket.nsp)));
    socket.once("connect_error", (err) => {
      socket.disconnect();
      resolve({ message: err.message, data: err.data === undefined ? null : err.data });
    });
  });
}

function client(nsp = "/", opts = {}) {
  return io(url + nsp, { transports, forceNew: true, reconnection: false, ...parser, ...opts });
}

const scenarios = {
  async basic() {
    const manager = new Manager(url, { transports, reconnection: false });
    const s = manager.socket("/");
    const witness = manager.socket("/custom");
    await Promise.all([connected(s), connected(witness)]);
    report.id = s.id;
    const echoed = next(s, "echo");
    s.emit("echo", "hello", Buffer.from([1, 2, 3]), { nested: [Buffer.from([4])], n: 1.5 });
    report.echo = await echoed;
    report.ack = await ack(s, "ack", 1, "two", Buffer.from([5]));
    s.on("question", (value, callback) => callback(value + 1, Buffer.from([9])));
    const answer = next(s, "answer");
    s.emit("ask me", 41);
    report.answer = await answer;
    await upgraded(s);
    s.emit("fail");
    report.afterFail = await ack(s, "ack", "still here");
    report.transport = s.io.engine.transport.name;
    const gone = next(s, "disconnect");
    s.disconnect();
    report.disconnect = await gone;
    // Packets stay in order on one connection: once this ack is back, the server saw the DISCONNECT.
    await ack(witness, "ack");
    manager.engine.close();
  },

  async namespaces() {
    const manager = new Manager(url, { transports, reconnection: false });
    const custom = manager.socket("/custom");
    const dyn = manager.socket("/dyn-42");
    const admin = manager.socket("/admin", { auth: { token: "s3cret" } });
    await Promise.all([connected(custom), connected(dyn), connected(admin)]);
    report.sameEngine = custom.io.engine === admin.io.engine;
    report.custom = await ack(custom, "ack", "custom");
    report.dyn = await ack(dyn, "ack", "dyn");
    report.admin = await ack(admin, "ack", "admin");
    report.invalid = await refused(manager.socket("/nope"));
    const other = new Manager(url, { transports, reconnection: false });
    report.rejected = await refused(other.socket("/admin", { auth: { token: "wrong" } }));
    report.stillAlive = await ack(custom, "ack", "alive");
    other.engine.close();
    manager.engine.close();
  },

  async rooms() {
    const [a, b, c] = [client(), client(), client()];
    await Promise.all([a, b, c].map(connected));
    const seen = { a: [], b: [], c: [] };
    for (const [name, s] of Object.entries({ a, b, c })) {
      s.onAny((event, ...args) => seen[name].push([event, ...plain(args)]));
    }
    report.aRooms = await ack(a, "join", "r1");
    report.bRooms = await ack(b, "join", "r1");
    const gotA = next(a, "room message");
    const gotB = next(b, "room message");
    report.sent = await ack(c, "to room", "r1", "hi room");
    await Promise.all([gotA, gotB]);
    const bcB = next(b, "broadcast");
    const bcC = next(c, "broadcast");
    await ack(a, "broadcast", "hi all");
    await Promise.all([bcB, bcC]);
    // Acks travel in order behind any event sent before them: a's list is final now.
    await ack(a, "ack");
    await ack(c, "ack");
    report.seen = seen;
    for (const s of [a, b, c]) s.disconnect();
  },

  // Values only the msgpack parser carries as they are: Dates, undefined, binary deep inside.
  async types() {
    const s = client();
    await connected(s);
    const echoed = next(s, "echo");
    s.emit("echo", new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 678)), undefined, 2 ** 53 - 1, -(2 ** 40), 0.1, "é€😀",
      { deep: { bin: Buffer.from([1, 2]) } }, [null, true, false]);
    report.echo = await echoed;
    report.ack = await ack(s, "ack", new Date(-1));
    s.disconnect();
  },

  async serverDisconnect() {
    const s = client();
    await connected(s);
    const gone = next(s, "disconnect");
    s.emit("disconnect me");
    report.disconnect = await gone;
    s.io.engine.close();
  },
};

scenarios[scenario]()
  .catch((err) => { report.error = String(err && err.stack ? err.stack : err); })
  .finally(() => {
    console.log(JSON.stringify(report));
    process.exit(0);
  });
