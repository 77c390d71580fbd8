// Clients of a `twistd txrealtime --workers N` server running tests/cluster/app.py.
// Usage: node workers_client.js URL COUNT MODE...   (MODE: polling | websocket | upgrade)
// Opens COUNT clients per mode, then reports as one JSON line: each client's pid (the worker that
// serves it), sid, transport; what one broadcast reached; fetch_sockets; the other workers' answers.
const { io } = require("socket.io-client");

const [url, count, ...modes] = process.argv.slice(2);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };

function connect(mode) {
  const socket = io(url, { transports: transports[mode], reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

function upgraded(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name === "websocket") return Promise.resolve();
  return new Promise((resolve) => engine.once("upgrade", resolve));
}

async function main() {
  const clients = [];
  for (const mode of modes) {
    for (let i = 0; i < Number(count); i++) {
      const socket = await connect(mode);
      if (mode === "upgrade") await upgraded(socket);
      const me = await socket.emitWithAck("whoami");
      clients.push({ mode, socket, pid: me.pid, id: me.id, sid: socket.io.engine.id, address: me.address });
    }
  }
  // One more round trip per client after the upgrades: every session still answers.
  for (const c of clients) c.again = (await c.socket.emitWithAck("whoami")).pid;
  const news = clients.map((c) => new Promise((resolve) => c.socket.once("news", (text, pid) => resolve({ text, pid }))));
  const sent = await clients[0].socket.emitWithAck("shout", "hello all");
  const heard = await Promise.all(news);
  const census = await clients[clients.length - 1].socket.emitWithAck("census");
  const answers = await clients[0].socket.emitWithAck("ask workers");
  const report = {
    clients: clients.map((c) => ({ mode: c.mode, pid: c.pid, again: c.again, id: c.id, sid: c.sid, address: c.address,
                                   transport: c.socket.io.engine.transport.name })),
    sent, heard, census, answers,
  };
  for (const c of clients) c.socket.disconnect();
  console.log(JSON.stringify(report));
}

main().catch((err) => { console.log(JSON.stringify({ error: String(err && err.stack || err) })); process.exit(1); });
