// Opens the echo example (examples/echo) in headless Chromium, sends a message and waits for its echo.
// Usage: node echo_browser.js URL ARTIFACT_DIR; prints one JSON line. Chromium: $CHROMIUM or /usr/bin/chromium.
const path = require("path");
const { launch } = require("./browser");
const { printReport } = require("./report");

const [url, artifacts] = process.argv.slice(2);
const report = {};

async function main() {
  const browser = await launch();
  let page;
  try {
    page = await (await browser.newContext()).newPage();
    report.errors = [];
    page.on("pageerror", (e) => report.errors.push(String(e)));
    const script = page.waitForResponse((r) => r.url().endsWith("/vendor/engine.io.min.js"));
    await page.goto(url);
    report.scriptStatus = (await script).status();
    report.eioType = await page.evaluate(() => typeof eio);
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("connected over"),
      null, { timeout: 60000 });
    await page.fill("#input", "hello <b>echo</b>");
    await page.press("#input", "Enter");
    await page.waitForSelector("#log li", { timeout: 60000 });
    report.log = await page.$$eval("#log li", (items) => items.map((li) => li.textContent));
    report.bold = await page.$$eval("#log b", (items) => items.length);
    report.inputAfter = await page.inputValue("#input");
    // The page offers the upgrade; wait for it so the status names the transport in use.
    await page.waitForFunction(() => document.getElementById("status").textContent === "connected over websocket",
      null, { timeout: 60000 });
    report.status = await page.textContent("#status");
    await page.screenshot({ path: path.join(artifacts, "echo.png") });
  } catch (err) {
    report.error = String(err && err.stack ? err.stack : err);
    if (page) {
      try {
        report.state = await page.evaluate(() => ({
          status: document.getElementById("status").textContent,
          log: [...document.querySelectorAll("#log li")].map((li) => li.textContent),
        }));
      } catch (e) {
        report.state = String(e);
      }
    }
  } finally {
    await browser.close();
  }
}

printReport(main, report);
