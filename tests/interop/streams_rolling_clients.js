// Many recovering clients through a proxy in front of nodes that restart in turn (tests/forwarding/ticker.py on
// each, sharing the Redis Streams adapter), counting every tick each client gets.
// Usage: node streams_rolling_clients.js PROXY_URL COUNT
// Connects COUNT clients (WebSocket, reconnecting by themselves), each in room "r", and prints {"ready": true}.
// On a line "end" on stdin (every node has sent all its ticks), it waits until every client has every node's
// last tick (at most 20 s), then prints one JSON line: how many reconnections were recovered or not, and how
// many ticks were lost or duplicated, over every client and node. A tick of a node that started after the
// clients connected counts from 1; of one running before, from the first the client got.
const readline = require("readline");
const { io } = require("socket.io-client");
const { ack, connected } = require("./peer");

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
const options = { transports: ["websocket"], reconnectionDelay: 50, reconnectionDelayMax: 300, forceNew: true };

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main() {
  const clients = [];
  const report = { clients: count, recovered: 0, notRecovered: 0, disconnects: 0 };
  for (let i = 0; i < count; i++) {
    const socket = io(url, options);
    const client = { socket, ticks: new Map(), connects: 0 };
    socket.on("tick", (pid, n) => {
      if (!client.ticks.has(pid)) client.ticks.set(pid, []);
      client.ticks.get(pid).push(n);
    });
    socket.on("disconnect", () => (report.disconnects += 1));
    socket.on("connect", () => {
      client.connects += 1;
      if (client.connects === 1) return;
      if (socket.recovered) {
        report.recovered += 1;
      } else {
        report.notRecovered += 1;
        socket.emit("join", "r", () => {});
      }
    });
    clients.push(client);
    await connected(socket);
    await ack(socket, "join", "r");
  }
  const before = new Set();
  for (const c of clients) for (const pid of c.ticks.keys()) before.add(pid);
  process.stdout.write(JSON.stringify({ ready: true }) + "\n");
  const lines = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.on("line", (line) => line.trim() === "end" && resolve()));
  const last = new Map();
  const settle = Date.now() + 20000;
  for (;;) {
    for (const c of clients) for (const [pid, ns] of c.ticks) last.set(pid, Math.max(last.get(pid) || 0, ...ns));
    const behind = clients.some((c) => [...last].some(([pid, max]) => !(c.ticks.get(pid) || []).includes(max)));
    if (!behind || Date.now() > settle) break;
    await sleep(100);
  }
  let lost = 0;
  const lostByNode = {};
  const sample = {};
  let duplicated = 0;
  let received = 0;
  for (const c of clients) {
    for (const [pid, max] of last) {
      const ns = c.ticks.get(pid) || [];
      received += ns.length;
      const unique = new Set(ns);
      duplicated += ns.length - unique.size;
      if (before.has(pid) && !ns.length) continue; // that node was done before this client joined
      const first = before.has(pid) ? Math.min(...ns) : 1;
      for (let n = first; n <= max; n++) {
        if (!unique.has(n)) {
          lost += 1;
          lostByNode[pid] = (lostByNode[pid] || 0) + 1;
          if (!sample[pid]) sample[pid] = [];
          if (sample[pid].length < 20) sample[pid].push(n);
        }
      }
    }
  }
  Object.assign(report, { lostByNode, sample, lost, duplicated, received, nodes: last.size, ticksPerNode: [...last.values()] });
  for (const c of clients) c.socket.disconnect();
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
