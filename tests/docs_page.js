// Opens a page in headless Chromium and reports the arguments of its first console.log call.
// Usage: node docs_page.js URL; prints one JSON line. Chromium: $CHROMIUM or /usr/bin/chromium.
const { launch } = require("./interop/browser");
const { printReport } = require("./interop/report");

const [url] = process.argv.slice(2);
const report = { errors: [] };

async function main() {
  const browser = await launch();
  try {
    const page = await (await browser.newContext()).newPage();
    const failed = new Promise((resolve, reject) => page.on("pageerror", (e) => {
      report.errors.push(String(e));
      reject(e);
    }));
    failed.catch(() => {});  // reported above, and through the race below if it comes first
    const message = page.waitForEvent("console", { predicate: (m) => m.type() === "log", timeout: 60000 });
    await page.goto(url);
    const args = (await Promise.race([message, failed])).args();
    const values = await Promise.all(args.map((arg) => arg.jsonValue()));
    report.console = values.length === 1 ? values[0] : values;
  } finally {
    await browser.close();
  }
}

printReport(main, report);
