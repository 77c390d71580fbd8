// Speaks to a txrealtime server as the official @socket.io/admin-ui does (socket.io-client on /admin), with
// socket.io-client app clients to watch and drive. Needs tests/admin/app.py's handlers on the server.
// Usage: node admin_client.js URL SCENARIO USER PASSWORD; prints one JSON line, then exits.
const { io } = require("socket.io-client");
const { connected } = require("./peer");

const [url, scenario, username, password] = process.argv.slice(2);
const report = {};

function refused(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error("unexpectedly connected to " + socket.nsp)));
    socket.once("connect_error", (err) => {
      socket.disconnect();
      resolve(err.message);
    });
  });
}

// An admin socket that records every event, in order, as [name, ...args].
function admin(auth, opts = {}) {
  const socket = io(url + "/admin", { forceNew: true, reconnection: false, auth, ...opts });
  socket.seen = [];
  socket.onAny((...args) => socket.seen.push(args));
  return socket;
}

function app(opts = {}) {
  return io(url, { forceNew: true, reconnection: false, transports: ["websocket"], ...opts });
}

// Wait until `socket` has recorded an event matching `test` (checked among all it saw, then new ones).
function waitFor(socket, test, what) {
  return new Promise((resolve, reject) => {
    const found = socket.seen.find(test);
    if (found) return resolve(found);
    const timer = setTimeout(() => reject(new Error("timed out waiting for " + what)), 20000);
    const listener = (...args) => {
      if (test(args)) {
        clearTimeout(timer);
        socket.offAny(listener);
        resolve(args);
      }
    };
    socket.onAny(listener);
  });
}

const named = (name, test = () => true) => (args) => args[0] === name && test(args);
const names = (socket) => socket.seen.map((args) => args[0]);

async function login() {
  const socket = admin({ username, password });
  await connected(socket);
  await waitFor(socket, named("config"), "config");
  return socket;
}

const scenarios = {
  async login() {
    report.wrongPassword = await refused(admin({ username, password: password + "x" }));
    report.wrongUser = await refused(admin({ username: username + "x", password }));
    report.noAuth = await refused(admin(undefined));
    report.badSession = await refused(admin({ sessionId: "0123456789abcdef" }));
    const first = admin({ username, password }, { transports: ["websocket"] });
    await connected(first);
    await waitFor(first, named("all_sockets"), "all_sockets");
    await waitFor(first, named("server_stats"), "server_stats");
    report.firstEvents = names(first).slice(0, 3);
    report.session = first.seen.find(named("session"))[1];
    report.config = first.seen.find(named("config"))[1];
    report.allSockets = first.seen.find(named("all_sockets"))[1];
    report.stats = first.seen.find(named("server_stats"))[1];
    report.adminId = first.id;
    // The UI comes back with its session id alone, and is not given a new one.
    const again = admin({ sessionId: report.session });
    await connected(again);
    await waitFor(again, named("all_sockets"), "all_sockets after a session login");
    report.againEvents = names(again).filter((n) => n !== "server_stats" && n !== "socket_connected"
      && n !== "room_joined");
    first.disconnect();
    again.disconnect();
  },

  async events() {
    const watcher = await login();
    const client = io(url, { forceNew: true, reconnection: false, transports: ["polling", "websocket"] });
    await connected(client);
    const id = report.clientId = client.id;
    report.connected = (await waitFor(watcher, named("socket_connected", (a) => a[1].id === client.id),
      "socket_connected")).slice(1);
    report.updated = (await waitFor(watcher, named("socket_updated", (a) => a[1].id === client.id),
      "socket_updated")).slice(1);
    client.emit("set", "name", "bob");
    report.dataUpdated = (await waitFor(watcher, named("socket_updated", (a) => a[1].id === client.id
      && a[1].data), "socket_updated with data")).slice(1);
    client.emit("echo", "hi", 1);
    report.received = (await waitFor(watcher, named("event_received", (a) => a[2] === client.id && a[3][0] === "echo"),
      "event_received")).slice(1);
    report.sent = (await waitFor(watcher, named("event_sent", (a) => a[2] === client.id && a[3][0] === "echoed"), "event_sent")).slice(1);
    report.joinAck = await client.emitWithAck("join", "room1");
    report.joined = (await waitFor(watcher, named("room_joined", (a) => a[2] === "room1"), "room_joined")).slice(1);
    await client.emitWithAck("leave", "room1");
    report.left = (await waitFor(watcher, named("room_left", (a) => a[2] === "room1"), "room_left")).slice(1);
    report.stats = (await waitFor(watcher, named("server_stats", (a) => a[1].clientsCount === 2
      && a[1].aggregatedEvents.some((e) => e.type === "packetsIn")), "server_stats with the client: "
      + JSON.stringify(watcher.seen.filter(named("server_stats")))))[1];
    client.disconnect();
    report.disconnected = (await waitFor(watcher, named("socket_disconnected", (a) => a[2] === id),
      "socket_disconnected")).slice(1);
    await waitFor(watcher, named("room_left", (a) => a[2] === id), "room_left of its own room");
    report.order = watcher.seen.map((a) => a[0]).filter((n) => ["socket_disconnected", "room_left"].includes(n))
      .slice(-2);
    report.lastStats = (await waitFor(watcher, named("server_stats", (a) => a[1].aggregatedEvents.some(
      (e) => e.type === "rawDisconnection")), "server_stats with the disconnection"))[1];
    watcher.disconnect();
  },

  async commands() {
    const watcher = await login();
    const client = app();
    await connected(client);
    const news = new Promise((resolve) => client.on("news", (...args) => resolve(args)));
    watcher.emit("emit", "/", null, "news", { a: 1 }, [2]);
    report.news = await news;
    watcher.emit("join", "/", "r2", client.id);
    report.joined = (await waitFor(watcher, named("room_joined", (a) => a[2] === "r2"), "room_joined")).slice(1);
    report.roomsAfterJoin = await client.emitWithAck("rooms");
    const inRoom = new Promise((resolve) => client.on("room news", (...args) => resolve(args)));
    watcher.emit("emit", "/", "r2", "room news", "for r2");
    report.roomNews = await inRoom;
    watcher.emit("leave", "/", "r2", client.id);
    report.left = (await waitFor(watcher, named("room_left", (a) => a[2] === "r2"), "room_left")).slice(1);
    watcher.emit("join", "/", "everyone");
    await waitFor(watcher, named("room_joined", (a) => a[2] === "everyone"), "room_joined without a filter");
    report.roomsAfterMjoin = await client.emitWithAck("rooms");
    const gone = new Promise((resolve) => client.once("disconnect", (reason) => resolve(reason)));
    watcher.emit("_disconnect", "/", false, client.id);
    report.disconnectReason = await gone;
    const second = app();
    const third = app();
    await Promise.all([connected(second), connected(third)]);
    const reasons = Promise.all([second, third].map((s) => new Promise((resolve) => s.once("disconnect", resolve))));
    watcher.emit("_disconnect", "/", true);
    report.closeReasons = await reasons;
    watcher.disconnect();
  },

  async readonly() {
    const watcher = await login();
    report.config = watcher.seen.find(named("config"))[1];
    const client = app();
    await connected(client);
    let news = 0;
    client.on("news", () => { news += 1; });
    let lost = null;
    client.on("disconnect", (reason) => { lost = reason; });
    watcher.emit("emit", "/", null, "news");
    watcher.emit("join", "/", "r9", client.id);
    watcher.emit("join", "/", "r9");
    watcher.emit("_disconnect", "/", true);
    watcher.emit("_disconnect", "/", false, client.id);
    report.probe = await watcher.emitWithAck("probe");  // the commands before it were handled
    report.rooms = await client.emitWithAck("rooms");
    report.news = news;
    report.connected = client.connected;
    report.lost = lost;
    client.disconnect();
    watcher.disconnect();
  },

  async production() {
    const watcher = await login();
    report.config = watcher.seen.find(named("config"))[1];
    const client = app();
    await connected(client);
    await client.emitWithAck("join", "room1");
    client.emit("echo", "hi");
    report.stats = (await waitFor(watcher, named("server_stats", (a) => a[1].clientsCount === 2),
      "server_stats with the client"))[1];
    report.probe = await watcher.emitWithAck("probe");
    report.events = [...new Set(names(watcher))].sort();
    client.disconnect();
    watcher.disconnect();
  },
};

scenarios[scenario]()
  .catch((err) => { report.error = String(err && err.stack ? err.stack : err); })
  .finally(() => {
    console.log(JSON.stringify(report));
    process.exit(0);
  });
