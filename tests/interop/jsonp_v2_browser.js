// socket.io-client 2.x in headless Chromium over JSONP polling (forceJSONP), against a server with
// --allow-eio3 and tests/socketio/app.py's handlers.
// Usage: node jsonp_v2_browser.js URL ARTIFACT_DIR; prints one JSON line. Chromium: $CHROMIUM or /usr/bin/chromium.
const path = require("path");
const { launch } = require("./browser");
const { printReport } = require("./report");

const [url] = process.argv.slice(2);
const report = {};

async function main() {
  const browser = await launch();
  try {
    const page = await (await browser.newContext()).newPage();
    report.errors = [];
    page.on("pageerror", (e) => report.errors.push(String(e)));
    const jsonp = [];
    page.on("request", (r) => {
      if (r.url().includes("transport=polling")) jsonp.push(`${r.method()} ${new URL(r.url()).searchParams.get("j")}`);
    });
    await page.goto(url + "/socket.io/socket.io.js"); // any page of the server's origin
    await page.addScriptTag({ path: path.join(__dirname, "node_modules/socket.io-client-v2/dist/socket.io.js") });
    Object.assign(report, await page.evaluate(async () => {
      const socket = io({ forceJSONP: true, transports: ["polling"], reconnection: false });
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      const ack = (...args) => new Promise((resolve) => socket.emit("ack", ...args, (...answer) => resolve(answer)));
      const answer = await ack("line\nbreak", "back\\nslash", "é 𝄞 \u2028");
      const echoed = new Promise((resolve) => socket.once("echo", (...args) => resolve(args)));
      socket.emit("echo", new Uint8Array([1, 2, 3]).buffer);
      const [binary] = await echoed;
      const result = {
        id: socket.id,
        engineId: socket.io.engine.id,
        transport: socket.io.engine.transport.name,
        query: socket.io.engine.transport.query,
        // U+2028 would end the report's line for the test's reader: it comes back spelled out.
        answer: answer.map((v) => (typeof v === "string" ? v.replace(/\u2028/g, "<U+2028>") : v)),
        binary: Array.from(new Uint8Array(binary)),
      };
      socket.close();
      return result;
    }));
    report.jsonpRequests = jsonp.length > 0 && jsonp.every((r) => /^(GET|POST) \d+$/.test(r));
  } finally {
    await browser.close();
  }
}

printReport(main, report);
