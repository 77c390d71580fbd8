// Crawls the docs site (./run-docs's build/site, served at URL) in headless Chromium: loads every page reachable
// from index.html, the guides and pydoctor's API reference alike, and checks every internal link (the page and
// the #anchor it names, or for other files that they are served); then searches with the search page.
// Usage: node docs_site_browser.js URL ARTIFACT_DIR; prints one JSON line. Chromium: $CHROMIUM or /usr/bin/chromium.
const path = require("path");
const { launch } = require("./browser");
const { printReport } = require("./report");

const [base, artifacts] = process.argv.slice(2);
const origin = new URL(base).origin;
const report = { pages: 0, files: 0, broken: [], errors: [], failedRequests: [] };
const SEARCH = "SessionManager";

function isPage(url) {
  return url.pathname.endsWith(".html") || url.pathname.endsWith("/");
}

async function main() {
  const browser = await launch();
  try {
    const page = await (await browser.newContext()).newPage();
    let current = "";
    page.on("pageerror", (e) => report.errors.push(`${current}: ${e}`));
    page.on("response", (r) => {
      if (r.status() >= 400 && r.url().startsWith(origin)) report.failedRequests.push(`${current}: ${r.status()} ${r.url()}`);
    });
    page.on("requestfailed", (r) => {
      if (r.url().startsWith(origin)) report.failedRequests.push(`${current}: ${r.failure().errorText} ${r.url()}`);
    });
    const anchors = new Map();  // page URL -> the ids and names in it
    const links = [];  // [from, to]
    const queue = [new URL("index.html", base + "/").href];
    const seen = new Set(queue);
    while (queue.length) {
      current = queue.shift();
      const response = await page.goto(current, { waitUntil: "load" });
      report.pages += 1;
      if (!response || response.status() !== 200) {
        report.broken.push(`${current}: status ${response ? response.status() : "none"}`);
        continue;
      }
      const found = await page.evaluate(() => ({
        ids: Array.from(document.querySelectorAll("[id], a[name]"), (e) => e.id || e.getAttribute("name")),
        hrefs: Array.from(document.querySelectorAll("a[href]"), (a) => a.href),
      }));
      anchors.set(current, new Set(found.ids));
      for (const href of found.hrefs) {
        if (!URL.canParse(href)) {
          report.broken.push(`${current}: not a URL: ${href}`);
          continue;
        }
        const url = new URL(href);
        if (url.origin !== origin) continue;
        links.push([current, href]);
        url.hash = "";
        if (isPage(url) && !seen.has(url.href)) {
          seen.add(url.href);
          queue.push(url.href);
        }
      }
    }
    const files = new Map();
    for (const [from, href] of links) {
      const url = new URL(href);
      const hash = decodeURIComponent(url.hash.slice(1));
      url.hash = "";
      if (isPage(url)) {
        if (!anchors.has(url.href)) continue;  // its load failed: reported above
        if (hash && !anchors.get(url.href).has(hash)) report.broken.push(`${from}: no #${hash} in ${url.href}`);
      } else {
        if (!files.has(url.href)) files.set(url.href, (await page.request.get(url.href)).status());
        if (files.get(url.href) !== 200) report.broken.push(`${from}: ${files.get(url.href)} for ${url.href}`);
      }
    }
    report.files = files.size;
    report.links = links.length;
    // The search box: the search page finds the API reference's SessionManager in the guides.
    current = new URL(`search.html?q=${SEARCH}`, base + "/").href;
    await page.goto(current);
    await page.waitForSelector("#search-results ul.search li", { timeout: 60000 });
    report.searchResults = await page.$$eval("#search-results ul.search li a", (as) => as.map((a) => a.textContent));
    report.searchBox = await page.goto(new URL("index.html", base + "/").href)
      .then(() => page.$$eval("form[action*='search'] input[name='q']", (inputs) => inputs.length));
    await page.screenshot({ path: path.join(artifacts, "docs-site.png") });
  } finally {
    await browser.close();
  }
}

printReport(main, report);
