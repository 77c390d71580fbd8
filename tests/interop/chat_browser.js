// Opens the chat example twice in headless Chromium: one page sends, the other must show it.
// Usage: node chat_browser.js URL ARTIFACT_DIR; prints one JSON line. Chromium: $CHROMIUM or /usr/bin/chromium.
const path = require("path");
const { chromium } = require("playwright-core");

const [url, artifacts] = process.argv.slice(2);
const report = {};

async function join(page, name) {
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("connected"));
  await page.fill("#name", name);
  await page.click("#join");
  await page.waitForSelector("#chat:not([hidden])");
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    const alice = await (await browser.newContext()).newPage();
    const bob = await (await browser.newContext()).newPage();
    const errors = [];
    for (const page of [alice, bob]) page.on("pageerror", (e) => errors.push(String(e)));
    await join(alice, "alice");
    await join(bob, "bob");
    await alice.waitForSelector("#messages li.notice >> text=bob joined");
    await alice.fill("#message", "hello from alice <b>not bold</b>");
    await alice.click("#send");
    const line = bob.locator("#messages li", { hasText: "hello from alice" });
    await line.waitFor();
    report.bobSees = await line.textContent();
    report.bobBold = await bob.locator("#messages b").count();
    await bob.waitForFunction(() => document.getElementById("status").textContent.includes("websocket"));
    report.bobStatus = await bob.textContent("#status");
    report.aliceMessages = await alice.locator("#messages li").allTextContents();
    await alice.screenshot({ path: path.join(artifacts, "chat-alice.png") });
    await bob.screenshot({ path: path.join(artifacts, "chat-bob.png") });
    await bob.close();
    await alice.waitForSelector("#messages li.notice >> text=bob left");
    report.aliceAfter = await alice.locator("#messages li").allTextContents();
    report.errors = errors;
  } finally {
    await browser.close();
  }
}

main()
  .catch((err) => { report.error = String(err && err.stack ? err.stack : err); })
  .finally(() => { console.log(JSON.stringify(report)); process.exit(0); });
