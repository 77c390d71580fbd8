// Connection state recovery with the official socket.io-client, against txrealtime or Node's server.
// Usage: node recovery_client.js URL polling|websocket|upgrade AWAY_MS
// A client joins a room and gets one room message; its transport is closed; a witness sends two
// more to the room; after AWAY_MS the client connects again, then the witness sends one more.
// Prints one JSON line with what the client saw, then exits.
const { io } = require("socket.io-client");
const { ack, connected } = require("./peer");
const { printReport } = require("./report");

const [url, mode, awayMs] = process.argv.slice(2);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];
const report = {};

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main() {
  const socket = io(url, { transports, forceNew: true, reconnection: false });
  const witness = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  const messages = [];
  socket.on("room message", (...args) => messages.push(args));
  await Promise.all([connected(socket), connected(witness)]);
  report.firstId = socket.id;
  report.firstRecovered = socket.recovered;
  await ack(socket, "join", "r");
  await ack(witness, "to room", "r", "before");
  while (messages.length < 1) await sleep(10);
  const gone = new Promise((resolve) => socket.once("disconnect", (reason) => resolve(reason)));
  socket.io.engine.close();
  report.disconnect = await gone;
  await ack(witness, "to room", "r", "missed 1");
  await ack(witness, "to room", "r", "missed 2");
  await sleep(Number(awayMs));
  socket.connect();
  await connected(socket);
  report.secondId = socket.id;
  report.recovered = socket.recovered;
  if (!socket.recovered) await ack(socket, "join", "r");
  await ack(witness, "to room", "r", "after");
  while (!messages.some((m) => m[1] === "after")) await sleep(10);
  report.rooms = await ack(socket, "join", "other");
  report.messages = messages.map((m) => m.slice(0, 2));
  report.offsets = messages.map((m) => typeof m[2]);
  socket.disconnect();
  witness.disconnect();
}

printReport(main, report);
