// Connects the official socket.io-client over TLS, trusting only the given CA, and joins the chat.
// Usage: node tls_client.js URL CA_PEM polling|websocket; prints one JSON line.
const fs = require("fs");
const { io } = require("socket.io-client");

const [url, caPath, mode] = process.argv.slice(2);
const socket = io(url, { transports: [mode], ca: fs.readFileSync(caPath), reconnection: false });
const report = {};
socket.on("connect_error", (err) => { report.error = String(err); done(); });
socket.on("connect", async () => {
  report.joined = await socket.emitWithAck("join", "tls-" + mode);
  report.transport = socket.io.engine.transport.name;
  report.secure = url.startsWith("https:");
  done();
});
function done() {
  console.log(JSON.stringify(report));
  process.exit(0);
}
