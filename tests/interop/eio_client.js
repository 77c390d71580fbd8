// Drives the official engine.io-client against a server that echoes every message.
// Usage: node eio_client.js URL polling|websocket|upgrade
// Prints one JSON line describing what happened, then exits.
const { Socket } = require("engine.io-client");

const [url, mode] = process.argv.slice(2);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];
const socket = new Socket(url, { transports, path: "/engine.io/" });
const report = { openTransport: null, upgradedTo: null, messages: [], closeReason: null };
const expected = mode === "upgrade" ? 3 : 2;

function finish() {
  console.log(JSON.stringify(report));
  process.exit(0);
}

socket.on("open", () => {
  report.openTransport = socket.transport.name;
  socket.send("hello");
  socket.send(Buffer.from([1, 2, 3]));
});
socket.on("upgrade", (transport) => {
  report.upgradedTo = transport.name;
  socket.send("after upgrade");
});
socket.on("message", (data) => {
  report.messages.push(typeof data === "string" ? data : { binary: Array.from(data) });
  if (report.messages.length === expected && (mode !== "upgrade" || report.upgradedTo)) {
    report.finalTransport = socket.transport.name;
    socket.close();
  }
});
socket.on("close", (reason) => {
  report.closeReason = reason;
  finish();
});
socket.on("error", (err) => {
  report.error = String(err);
  finish();
});
