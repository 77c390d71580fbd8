// The official engine.io-client in the cases where txrealtime's wire differed from Node's engine.io
// (tests/engineio/test_node_parity.py). Usage: node eio_parity_client.js URL CASE, CASE one of:
//   oversize-polling    on polling only, send a message over the server's maxPayload (1000 bytes);
//   oversize-websocket  the same on WebSocket only;
//   base64-websocket    on WebSocket with forceBase64, send binary (a text frame "b<base64>") and await its echo.
// Prints one JSON line: the close reason, the messages received, the transport, then exits.
const { Socket } = require("engine.io-client");

const [url, mode] = process.argv.slice(2);
const polling = mode === "oversize-polling";
const socket = new Socket(url, {
  transports: polling ? ["polling"] : ["websocket"],
  path: "/engine.io/",
  forceBase64: mode === "base64-websocket",
});
const report = { closeReason: null, messages: [], transport: null };

function finish() {
  console.log(JSON.stringify(report));
  process.exit(0);
}

socket.on("open", () => {
  report.transport = socket.transport.name;
  if (mode === "base64-websocket") {
    socket.send(Buffer.from([1, 2, 3]));
  } else {
    socket.send("x".repeat(2000));
  }
});
socket.on("message", (data) => {
  report.messages.push(typeof data === "string" ? data : { binary: Array.from(data) });
  socket.close();
});
socket.on("close", (reason) => {
  report.closeReason = reason;
  finish();
});
setTimeout(() => {
  report.closeReason = "timeout";
  finish();
}, 10000);
