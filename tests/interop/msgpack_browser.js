// The served msgpack bundle (socket.io.msgpack.min.js) in headless Chromium, against `twistd txrealtime --parser
// msgpack --app tests.socketio.app:install`: binary (ArrayBuffer) and Dates, acks both ways, the upgrade.
// Usage: node msgpack_browser.js URL ARTIFACT_DIR; URL serves a page loading the bundle. Prints one JSON line.
const path = require("path");
const { launch } = require("./browser");
const { printReport } = require("./report");

const [url, artifacts] = process.argv.slice(2);
const report = { errors: [] };

async function main() {
  const browser = await launch();
  try {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (e) => report.errors.push(String(e)));
    const script = page.waitForResponse((r) => r.url().endsWith("/socket.io/socket.io.msgpack.min.js"));
    await page.goto(url);
    report.scriptStatus = (await script).status();
    Object.assign(report, await page.evaluate(async () => {
      const plain = (v) => {
        if (v instanceof ArrayBuffer) return { binary: Array.from(new Uint8Array(v)) };
        if (v instanceof Date) return { date: v.toISOString() };
        if (Array.isArray(v)) return v.map(plain);
        if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
        return v;
      };
      const answer = (socket, event, ...args) => new Promise((resolve) => socket.emit(event, ...args,
        (...values) => resolve(plain(values))));
      const socket = io({ reconnection: false });
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      const out = {};
      const polling = io({ transports: ["polling"], forceNew: true, reconnection: false });
      out.polling = await answer(polling, "ack", new Uint8Array([4, 5]).buffer);
      polling.disconnect();
      out.ack = await answer(socket, "ack", new Uint8Array([1, 2, 3]).buffer, new Date(Date.UTC(2021, 5, 6)),
        { n: 1.5 });
      const echoed = new Promise((resolve) => socket.once("echo", (...args) => resolve(plain(args))));
      socket.emit("echo", "hé", new Uint8Array([9]).buffer);
      out.echo = await echoed;
      socket.on("question", (value, callback) => callback(value + 1, new Uint8Array([7]).buffer));
      const answered = new Promise((resolve) => socket.once("answer", (...args) => resolve(plain(args))));
      socket.emit("ask me", 41);
      out.answer = await answered;
      if (socket.io.engine.transport.name !== "websocket") {
        await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
      }
      out.transport = socket.io.engine.transport.name;
      out.afterUpgrade = await answer(socket, "ack", "after");
      socket.disconnect();
      return out;
    }));
    await page.screenshot({ path: path.join(artifacts, "msgpack.png") });
  } finally {
    await browser.close();
  }
}

printReport(main, report);
