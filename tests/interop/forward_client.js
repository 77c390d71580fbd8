// Clients of txrealtime nodes behind a load balancer, for the forwarding tests and their controls.
// Usage: node forward_client.js URL MODE COUNT HOLD_MS [--reconnect]   (MODE: polling | websocket | upgrade,
// or several joined by commas: one client of each in turn)
// Each client connects (more than COUNT if they all landed on one node), joins room "r", does 20 emits with acks; the last client shouts to the room and every
// client must hear it; then all stay HOLD_MS (several heartbeats) and say "whoami" again. Reports one JSON
// line: per client the node (pid) that holds its session, its sids, transport, disconnects and what it heard.
const { io } = require("socket.io-client");

const [url, mode, count, hold, flag] = process.argv.slice(2);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };

const modes = mode.split(",");

function connect(i) {
  const kind = modes[i % modes.length];
  const socket = io(url, { transports: transports[kind], reconnection: flag === "--reconnect", forceNew: true,
                           timeout: 10000 });
  const state = { socket, kind, disconnects: [], heard: [], sids: [] };
  socket.on("disconnect", (reason) => state.disconnects.push(reason));
  socket.on("news", (text, pid) => state.heard.push([text, pid]));
  socket.on("connect", () => state.sids.push(socket.io.engine.id));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(state));
    socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
    socket.io.once("close", (reason) => reject(new Error(`closed before connecting: ${reason}`)));
    setTimeout(() => reject(new Error("not connected within 10 s")), 10000);
  });
}

function upgraded(socket, kind) {
  const engine = socket.io.engine;
  if (kind !== "upgrade" || engine.transport.name === "websocket") return Promise.resolve();
  return new Promise((resolve, reject) => {
    engine.once("upgrade", () => resolve());
    setTimeout(() => reject(new Error("no upgrade within 10 s")), 10000);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const clients = [];
  // COUNT clients, and more (up to 6) until sessions are on two nodes at least: the broadcast must cross nodes.
  for (let i = 0; i < Number(count) + 6; i++) {
    const spread = new Set(clients.map((c) => c.pid)).size > 1;
    if (i >= Number(count) && spread) break;
    // One more request (answered at once, "Transport unknown"), so that the next client starts on the next node.
    if (clients.length && !spread) await fetch(`${url}/socket.io/?EIO=4&transport=none`).catch(() => null);
    const c = await connect(i);
    clients.push(c);
    c.pid = (await c.socket.timeout(10000).emitWithAck("whoami")).pid;
  }
  for (const c of clients) {
    await upgraded(c.socket, c.kind);
    c.joined = await c.socket.timeout(10000).emitWithAck("join", "r");
    c.echoes = [];
    for (let i = 0; i < 20; i++) c.echoes.push((await c.socket.timeout(10000).emitWithAck("echo", i, "x".repeat(i)))[0]);
  }
  const last = clients[clients.length - 1];
  const sent = await last.socket.timeout(10000).emitWithAck("shout", "r", "hello room");
  for (let i = 0; i < 100 && clients.some((c) => c.heard.length === 0); i++) await sleep(100);
  console.log(JSON.stringify({ ready: clients.map((c) => c.pid) }));  // all joined and heard: the hold starts
  await sleep(Number(hold));
  for (const c of clients) c.again = (await c.socket.timeout(10000).emitWithAck("whoami")).pid;
  const report = {
    sent,
    clients: clients.map((c) => ({
      kind: c.kind, pid: c.pid, joined: c.joined, again: c.again, sids: c.sids, transport: c.socket.io.engine.transport.name,
      echoes: c.echoes, heard: [...c.heard], disconnects: [...c.disconnects], connected: c.socket.connected,
    })),
    shouter: last.pid,
  };
  for (const c of clients) c.socket.disconnect();
  console.log(JSON.stringify(report));
  process.exit(0);
}

main().catch((err) => { console.log(JSON.stringify({ error: String(err && err.stack || err) })); process.exit(1); });
