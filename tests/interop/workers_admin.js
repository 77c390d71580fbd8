// The admin UI's view of a `--workers` master: an admin socket (as @socket.io/admin-ui) and app clients.
// Usage: node workers_admin.js URL CLIENTS; prints one JSON line: the server ids seen in server_stats
// (once each worker's stats arrived) and the app clients' socket ids seen through all_sockets.
const { io } = require("socket.io-client");
const { printReport } = require("./report");

const [url, count] = process.argv.slice(2);
const report = {};

async function main() {
  const clients = [];
  for (let i = 0; i < Number(count); i++) {
    const client = io(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    await new Promise((resolve, reject) => { client.once("connect", resolve); client.once("connect_error", reject); });
    clients.push(client);
  }
  const admin = io(url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"] });
  const servers = new Map();
  const sockets = new Set();
  admin.on("all_sockets", (list) => list.forEach((s) => sockets.add(s.id)));
  admin.on("socket_connected", (s) => sockets.add(s.id));
  await new Promise((resolve) => {
    admin.on("server_stats", (stats) => {
      servers.set(stats.serverId, stats.clientsCount);
      if (servers.size === 2) resolve();
    });
  });
  report.servers = Object.fromEntries(servers);
  report.clients = clients.map((c) => c.id);
  report.seen = [...sockets];
  admin.disconnect();
  clients.forEach((c) => c.disconnect());
}

printReport(main, report);
