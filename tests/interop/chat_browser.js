// Opens the chat example twice in headless Chromium: one page sends, the other must show it.
// Usage: node chat_browser.js URL ARTIFACT_DIR; prints one JSON line. Chromium: $CHROMIUM or /usr/bin/chromium.
const path = require("path");
const { launch } = require("./browser");

const [url, artifacts] = process.argv.slice(2);
const report = {};

async function join(page, name) {
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("connected"));
  await page.fill("#name", name);
  await page.click("#join");
  await page.waitForSelector("#chat:not([hidden])", { timeout: 60000 });
}

// What each page looked like when something failed, kept as test artifacts.
async function describe(pages) {
  const state = {};
  for (const [name, page] of Object.entries(pages)) {
    try {
      state[name] = await page.evaluate(() => ({
        status: document.getElementById("status").textContent,
        chatHidden: document.getElementById("chat").hidden,
        messages: [...document.querySelectorAll("#messages li")].map((li) => li.textContent),
      }));
      await page.screenshot({ path: path.join(artifacts, `chat-failure-${name}.png`) });
    } catch (e) {
      state[name] = String(e);
    }
  }
  return state;
}

async function main() {
  const browser = await launch();
  const pages = {};
  try {
    const alice = (pages.alice = await (await browser.newContext()).newPage());
    const bob = (pages.bob = await (await browser.newContext()).newPage());
    const errors = [];
    report.console = [];
    for (const page of [alice, bob]) {
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => report.console.push(m.text()));
    }
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
    delete pages.bob;
    await alice.waitForSelector("#messages li.notice >> text=bob left");
    report.aliceAfter = await alice.locator("#messages li").allTextContents();
    report.errors = errors;
  } catch (err) {
    report.error = String(err && err.stack ? err.stack : err);
    report.state = await describe(pages);
  } finally {
    await browser.close();
  }
}

main()
  .catch((err) => { report.error = report.error || String(err && err.stack ? err.stack : err); })
  .finally(() => { console.log(JSON.stringify(report)); process.exit(0); });
