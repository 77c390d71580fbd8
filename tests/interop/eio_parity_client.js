// The official engine.io-client in the cases where txrealtime's wire differed from Node's engine.io
// (tests/engineio/test_node_parity.py). Usage: node eio_parity_client.js URL CASE, CASE one of:
//   oversize-polling    on polling only, send a message over the server's maxPayload (1000 bytes);
//   oversize-websocket  the same on WebSocket only;
//   base64-websocket    on WebSocket with forceBase64, send binary (a text frame "b<base64>") and await its echo;
//   initial-polling     on polling only, await the first message (the server's initialPacket);
//   initial-websocket   the same on WebSocket only;
//   deny-websocket      on WebSocket only, with ?deny=1 (which the servers' middleware refuses).
// Prints one JSON line, then exits: the close reason and what came with it (the error's message, its
// description, and of its context the WebSocket close code, reason and cleanness or the HTTP status), the
// "error" events, the messages received and the transport.
const { Socket } = require("engine.io-client");

const [url, mode] = process.argv.slice(2);
const socket = new Socket(url, {
  transports: mode.endsWith("-polling") ? ["polling"] : ["websocket"],
  path: "/engine.io/",
  forceBase64: mode === "base64-websocket",
  query: mode === "deny-websocket" ? { deny: "1" } : {},
});
const report = { closeReason: null, detail: null, errors: [], messages: [], transport: null };

function finish() {
  console.log(JSON.stringify(report));
  process.exit(0);
}

function described(detail) {
  if (!detail) return null;
  const context = detail.context || {};
  const plain = (value) => (value === undefined ? null : value);
  return {
    message: plain(detail.message),
    description: typeof detail.description === "object" && detail.description !== null
      ? { message: plain(detail.description.message) } : plain(detail.description),
    code: plain(context.code),
    reason: plain(context.reason),
    wasClean: plain(context.wasClean),
    status: plain(context.status),
  };
}

socket.on("open", () => {
  report.transport = socket.transport.name;
  if (mode === "base64-websocket") {
    socket.send(Buffer.from([1, 2, 3]));
  } else if (mode.startsWith("oversize-")) {
    socket.send("x".repeat(2000));
  }
});
socket.on("message", (data) => {
  report.messages.push(typeof data === "string" ? data : { binary: Array.from(data) });
  socket.close();
});
socket.on("error", (error) => report.errors.push(String(error)));
socket.on("close", (reason, detail) => {
  report.closeReason = reason;
  report.detail = described(detail);
  finish();
});
setTimeout(() => {
  report.closeReason = "timeout";
  finish();
}, 10000);
