// Connection state recovery at its edges with the official socket.io-client, against txrealtime or Node's server.
// Usage: node recovery_edges.js URL polling|websocket SCENARIO
//   late-join  the client joins room "b" after a message was sent to it, then recovers with an older offset
//   volatile   the last event before the disconnection is volatile and ends with a string (socket.io#5539)
//   no-offset  the client got no event before the disconnection, so it has no offset (socket.io#4888)
// Each time a witness sends "missed" to the room while the client is away, and "after" once it is back.
// Prints one JSON line: whether the client recovered, and the room messages it saw.
const { io } = require("socket.io-client");
const { ack, connected } = require("./peer");
const { printReport } = require("./report");

const [url, mode, scenario] = process.argv.slice(2);
const report = { scenario };

async function until(check) {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!check()) throw new Error("timed out");
}

async function main() {
  const socket = io(url, { transports: [mode], forceNew: true, reconnection: false });
  const witness = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  const messages = [];
  socket.on("room message", (room, text) => messages.push([room, text]));
  await Promise.all([connected(socket), connected(witness)]);
  const room = scenario === "late-join" ? "b" : "a";
  await ack(socket, "join", "a");
  if (scenario === "late-join") {
    await ack(witness, "to room", "a", "hello");
    await ack(witness, "to room", "b", "before the join");
    await until(() => messages.length === 1);
    await ack(socket, "join", "b");
  } else if (scenario === "volatile") {
    await ack(witness, "to room", "a", "hello");
    await ack(witness, "volatile to room", "a", "status");
    await until(() => messages.length === 2);
  }
  const gone = new Promise((resolve) => socket.once("disconnect", resolve));
  socket.io.engine.close();
  await gone;
  await ack(witness, "to room", room, "missed");
  socket.connect();
  await connected(socket);
  report.recovered = socket.recovered;
  if (!socket.recovered) await ack(socket, "join", room);
  await ack(witness, "to room", room, "after");
  await until(() => messages.some((m) => m[1] === "after"));
  report.messages = messages;
  socket.disconnect();
  witness.disconnect();
}

printReport(main, report);
