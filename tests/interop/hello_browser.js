// Opens the tutorial page (examples/hello) in headless Chromium and waits for the server's news.
// Usage: node hello_browser.js URL ARTIFACT_DIR; prints one JSON line. Chromium: $CHROMIUM or /usr/bin/chromium.
const path = require("path");
const { launch } = require("./browser");
const { printReport } = require("./report");

const [url, artifacts] = process.argv.slice(2);
const report = {};

async function main() {
  const browser = await launch();
  try {
    const page = await (await browser.newContext()).newPage();
    report.errors = [];
    page.on("pageerror", (e) => report.errors.push(String(e)));
    const script = page.waitForResponse((r) => r.url().endsWith("/socket.io/socket.io.js"));
    await page.goto(url);
    const response = await script;
    report.scriptStatus = response.status();
    report.scriptType = response.headers()["content-type"];
    await page.waitForFunction(() => document.getElementById("news").textContent.startsWith("{"), null,
      { timeout: 60000 });
    report.news = JSON.parse(await page.textContent("#news"));
    report.ioType = await page.evaluate(() => typeof io);
    report.transport = await page.evaluate(() => socket.io.engine.transport.name);
    await page.screenshot({ path: path.join(artifacts, "hello.png") });
  } finally {
    await browser.close();
  }
}

printReport(main, report);
