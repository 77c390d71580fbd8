// Headless Chromium for the page tests: Debian's chromium ($CHROMIUM or /usr/bin/chromium), driven by
// playwright-core, with the flags every page test uses (no sandbox, no GPU, nothing fetched in the background).
const { chromium } = require("playwright-core");

function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

module.exports = { launch };
