// Drives the official socket.io-client (permessage-deflate on, as its default: threshold 1024) against
// tests/socketio/app.py. Usage: node compress_client.js URL websocket|upgrade
// Counts the messages ws inflates and deflates (its PerMessageDeflate's calls) around each step and
// prints one JSON line with what the client saw, then exits.
const path = require("path");
const { io } = require("socket.io-client");

const wsMain = require.resolve("ws", { paths: [path.dirname(require.resolve("engine.io-client"))] });
const PerMessageDeflate = require(path.join(path.dirname(wsMain), "lib", "permessage-deflate.js"));
const counts = { inflated: 0, deflated: 0 };
for (const [method, key] of [["decompress", "inflated"], ["compress", "deflated"]]) {
  const original = PerMessageDeflate.prototype[method];
  PerMessageDeflate.prototype[method] = function (data, fin, callback) {
    if (fin) counts[key]++;
    return original.call(this, data, fin, callback);
  };
}

const [url, mode] = process.argv.slice(2);
const transports = { websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];
const report = {};
const BIG = "compress me ".repeat(300);
const BINARY = Buffer.alloc(4000, 7);

function client() {
  const socket = io(url, { transports, forceNew: true, reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

function upgraded(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name === "websocket") return Promise.resolve();
  return new Promise((resolve) => engine.once("upgrade", () => resolve()));
}

// Run one step; report whether it came back intact and how many messages each way were compressed.
async function step(name, run) {
  const before = { ...counts };
  report[name] = { ok: await run() };
  report[name].inflated = counts.inflated - before.inflated;
  report[name].deflated = counts.deflated - before.deflated;
}

function echo(socket, event, ...args) {
  return new Promise((resolve) => {
    socket.once("echo", (...back) => resolve(back));
    socket.emit(event, ...args);
  });
}

(async () => {
  const a = await client();
  const b = await client();
  await Promise.all([upgraded(a), upgraded(b)]);
  report.transport = a.io.engine.transport.name;
  report.extensions = a.io.engine.transport.ws.extensions;
  await step("bigText", async () => (await echo(a, "echo", BIG))[0] === BIG);
  await step("smallText", async () => (await echo(a, "echo", "small"))[0] === "small");
  await step("bigBinary", async () => BINARY.equals((await echo(a, "echo", BINARY))[0]));
  await step("serverCompressFalse", async () => (await echo(a, "echo uncompressed", BIG))[0] === BIG);
  await step("clientCompressFalse", async () => {
    const back = new Promise((resolve) => a.once("echo", resolve));
    a.compress(false).emit("echo", "x".repeat(2000));
    return (await back) === "x".repeat(2000);
  });
  await step("broadcast", async () => {
    const got = new Promise((resolve) => b.once("broadcast", resolve));
    const acked = new Promise((resolve) => a.emit("broadcast", BIG, resolve));
    return (await got) === BIG && (await acked) === true;
  });
  a.disconnect();
  b.disconnect();
})()
  .catch((err) => { report.error = String(err && err.stack ? err.stack : err); })
  .finally(() => {
    console.log(JSON.stringify(report));
    process.exit(0);
  });
