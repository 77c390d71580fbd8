// One known conversation with the official socket.io-client, scraping /metrics and /healthz while connected.
// Usage: node metrics_client.js URL websocket|upgrade
// The server (tests/test_metrics.py) answers "echo" with its arguments and, on "ask", asks the client a
// "question" with a 0.2 s timeout that the client never answers, then acks "timed out".
// Prints one JSON line: ids, the transport, what was acked, and the scraped texts.
const { io } = require("socket.io-client");

const [url, mode] = process.argv.slice(2);
const transports = { websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];

async function main() {
  const socket = io(url, { transports, forceNew: true, reconnection: false });
  socket.on("question", () => {}); // never acknowledged
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  const engine = socket.io.engine;
  if (engine.transport.name !== "websocket") {
    await new Promise((resolve) => engine.once("upgrade", resolve));
  }
  const report = { sid: engine.id, id: socket.id, transport: engine.transport.name, acks: [] };
  for (const word of ["one", "two", "three"]) {
    report.acks.push(await socket.emitWithAck("echo", word));
  }
  report.acks.push(await socket.emitWithAck("ask"));
  report.metrics = await (await fetch(url + "/metrics")).text();
  const health = await fetch(url + "/healthz");
  report.health = { status: health.status, body: await health.json() };
  await new Promise((resolve) => {
    socket.once("disconnect", resolve);
    socket.disconnect();
  });
  console.log(JSON.stringify(report));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
