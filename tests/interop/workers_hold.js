// Clients of a `twistd txrealtime --workers N` server running tests/cluster/app.py, which stay
// connected and follow commands on stdin. Usage: node workers_hold.js URL COUNT MODE...
// First prints {clients: [{mode, pid, sid}]}. Then, per line on stdin:
//   "reconnect PID": waits until every client that PID served is connected again (reconnection is on),
//                    then prints {clients: [...]} as they are now (each asked "whoami" again);
//   "closed":        waits until the server closed every client, then prints {reasons: [...]}.
const { io } = require("socket.io-client");
const readline = require("readline");

const [url, count, ...modes] = process.argv.slice(2);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };

function connected(socket) {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve) => socket.once("connect", resolve));
}

async function describe(clients) {
  for (const c of clients) {
    await connected(c.socket);
    const me = await c.socket.emitWithAck("whoami");
    c.pid = me.pid;
  }
  return clients.map((c) => ({ mode: c.mode, pid: c.pid, sid: c.socket.io.engine.id }));
}

async function main() {
  const clients = [];
  for (const mode of modes) {
    for (let i = 0; i < Number(count); i++) {
      const socket = io(url, { transports: transports[mode], forceNew: true, reconnectionDelay: 100,
                               reconnectionDelayMax: 500, randomizationFactor: 0 });
      const c = { mode, socket, reasons: [] };
      socket.on("disconnect", (reason) => c.reasons.push(reason));
      clients.push(c);
      await connected(socket);
      if (mode === "upgrade" && socket.io.engine.transport.name !== "websocket") {
        await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
      }
    }
  }
  console.log(JSON.stringify({ clients: await describe(clients) }));
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [command, arg] = line.trim().split(" ");
    if (command === "reconnect") {
      const lost = clients.filter((c) => c.pid === Number(arg));
      await Promise.all(lost.map((c) => c.reasons.length ? Promise.resolve()
        : new Promise((resolve) => c.socket.once("disconnect", resolve))));
      console.log(JSON.stringify({ clients: await describe(clients), lost: lost.length }));
    } else if (command === "closed") {
      await Promise.all(clients.map((c) => c.reasons.length ? Promise.resolve()
        : new Promise((resolve) => c.socket.once("disconnect", resolve))));
      console.log(JSON.stringify({ reasons: clients.map((c) => c.reasons[0]) }));
      for (const c of clients) c.socket.disconnect();
      process.exit(0);
    }
  }
}

main().catch((err) => { console.log(JSON.stringify({ error: String(err && err.stack || err) })); process.exit(1); });
