// The chat example across a server restart, in headless Chromium.
// Usage: node chat_restart_browser.js URL ARTIFACT_DIR
// Alice joins and says something; the script prints {"phase": "joined"} and waits for a line on stdin
// (the test restarts the server meanwhile); then Alice's page must join again by itself, Bob joins,
// and what Alice says reaches Bob. Prints one JSON line with what the pages showed.
const path = require("path");
const readline = require("readline");
const { launch } = require("./browser");
const { printReport } = require("./report");

const [url, artifacts] = process.argv.slice(2);
const report = {};

function stdinLine() {
  return new Promise((resolve) => readline.createInterface({ input: process.stdin }).once("line", resolve));
}

async function messages(page) {
  return page.evaluate(() => [...document.querySelectorAll("#messages li")].map((li) => li.textContent));
}

async function join(page, name) {
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("connected"));
  await page.fill("#name", name);
  await page.click("#join");
  await page.waitForSelector("#chat:not([hidden])", { timeout: 60000 });
}

async function say(page, text) {
  await page.fill("#message", text);
  await page.click("#send");
}

async function main() {
  const browser = await launch();
  try {
    const alice = await (await browser.newContext()).newPage();
    report.errors = [];
    alice.on("pageerror", (e) => report.errors.push(String(e)));
    await join(alice, "alice");
    await say(alice, "before the restart");
    await alice.locator("#messages li", { hasText: "before the restart" }).waitFor();
    console.log(JSON.stringify({ phase: "joined" }));
    await stdinLine();
    await alice.waitForSelector("#messages li.notice >> text=joined again as alice", { timeout: 60000 });
    report.aliceStatus = await alice.textContent("#status");
    const bob = await (await browser.newContext()).newPage();
    bob.on("pageerror", (e) => report.errors.push(String(e)));
    await join(bob, "bob");
    await say(alice, "after the restart");
    await bob.locator("#messages li", { hasText: "after the restart" }).waitFor({ timeout: 60000 });
    report.alice = await messages(alice);
    report.bob = await messages(bob);
    report.aliceError = await alice.textContent("#error");
    await alice.screenshot({ path: path.join(artifacts, "chat-restart-alice.png") });
  } finally {
    await browser.close();
  }
}

printReport(main, report);
