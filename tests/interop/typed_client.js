// The official socket.io-client sending bad payloads to examples/typed/app.py behind a Validator.
// Usage: node typed_client.js URL polling|websocket. Prints one JSON line with what the client saw.
const { io } = require("socket.io-client");

const [url, mode] = process.argv.slice(2);
const socket = io(url, { transports: [mode], forceNew: true, reconnection: false });
const report = {};
const disconnects = [];
const messages = [];
socket.on("message", (message) => messages.push(message));
socket.on("disconnect", (reason) => disconnects.push(reason));

function connected() {
  return new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
}

(async () => {
  try {
    await connected();
    report.id = socket.id;
    report.badJoin = await socket.timeout(5000).emitWithAck("join", 42);
    report.missingJoin = await socket.timeout(5000).emitWithAck("join");
    report.extraJoin = await socket.timeout(5000).emitWithAck("join", "lobby", "extra");
    // Bad payloads without an acknowledgement: dropped, so the room gets no message from them.
    socket.emit("say", { room: "lobby" });
    socket.emit("say", { room: "lobby", text: 7 });
    socket.emit("say", "lobby");
    report.goodJoin = await socket.timeout(5000).emitWithAck("join", "lobby");
    const relayed = new Promise((resolve) => socket.once("message", resolve));
    socket.emit("say", { room: "lobby", text: "hello" });
    report.relayed = await relayed;
    report.messages = messages;
    report.sameId = socket.id === report.id;
    report.connected = socket.connected;
    report.disconnects = [...disconnects]; // before this client's own disconnect below
  } catch (error) {
    report.error = String(error);
  }
  socket.disconnect();
  console.log(JSON.stringify(report));
})();
