// The official admin UI (@socket.io/admin-ui's ui/dist, served by txrealtime at /admin-ui/) in headless
// Chromium, logging in to the server that serves it and watching socket.io-client sockets of this process.
// Usage: node admin_browser.js URL ARTIFACT_DIR PASSWORD full|readonly [UI_URL]; prints one JSON line.
// UI_URL (default: URL) serves the UI's files: another origin tries cross-origin use, as the hosted UI does.
// Chromium: $CHROMIUM or /usr/bin/chromium. Nothing but loopback is fetched (the UI's web fonts are refused).
const path = require("path");
const { io } = require("socket.io-client");
const { launch } = require("./browser");
const { printReport } = require("./report");

const [url, artifacts, password, mode, uiUrl = url] = process.argv.slice(2);
const report = { errors: [] };
const TIMEOUT = { timeout: 30000 };

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

async function until(test, what) {
  for (let i = 0; i < 300; i++) {
    if (await test()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error("timed out waiting for " + what);
}

async function login(page, secret) {
  await page.getByLabel("Server URL").fill(url);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(secret);
  await page.getByRole("button", { name: "Connect" }).click();
}

const status = (page) => page.locator("header .v-chip__content").first().textContent();

async function main() {
  const client = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  await connected(client);
  const id = (report.clientId = client.id);
  await client.emitWithAck("join", "lobby");
  const gone = new Promise((resolve) => client.once("disconnect", resolve));

  const browser = await launch();
  try {
    const page = await (await browser.newContext()).newPage();
    page.on("pageerror", (e) => report.errors.push(String(e)));
    await page.route((u) => u.hostname !== "127.0.0.1", (route) => route.abort());
    await page.goto(uiUrl + "/admin-ui/");

    await login(page, password + "x");
    await page.getByText("invalid credentials").waitFor(TIMEOUT);
    report.wrongPassword = (await status(page)).trim();
    await login(page, password);
    await until(async () => (await status(page)).trim() === "connected", "the UI to connect");

    await page.goto(uiUrl + "/admin-ui/#/sockets");
    await page.getByText(id).waitFor(TIMEOUT);
    report.socketListed = true;
    const row = page.locator("tr", { hasText: id });
    report.rowButtons = await row.locator("button").count();

    await page.goto(uiUrl + "/admin-ui/#/rooms");
    await page.getByText("lobby").waitFor(TIMEOUT);
    report.roomListed = true;

    await page.goto(uiUrl + "/admin-ui/#/servers");
    const servers = page.locator("main tr", { hasText: /#\d+/ });
    await servers.first().waitFor(TIMEOUT);
    report.servers = (await servers.allInnerTexts()).map((row) => row.split("\t")[0]);

    // Through the socket's page: join a room from the UI.
    await page.goto(uiUrl + `/admin-ui/#/n/%2F/sockets/${id}`);
    await page.getByText("Socket details").waitFor(TIMEOUT);
    const joinField = page.getByLabel("Join a room");
    await joinField.fill("from-ui");
    await page.locator("main form button[type=submit]").click();
    if (mode === "full") {
      await until(async () => (await client.emitWithAck("rooms")).includes("from-ui"), "the join from the UI");
      await page.locator("main").getByText("from-ui").waitFor(TIMEOUT);
      report.joinedFromUi = await client.emitWithAck("rooms");

      // Disconnect it from the sockets list.
      await page.goto(uiUrl + "/admin-ui/#/sockets");
      await page.locator("tr", { hasText: id }).locator("button").click();
      report.disconnectReason = await gone;
    }
    await page.screenshot({ path: path.join(artifacts, `admin-ui-${mode}.png`) });

    // Back later: the UI logs in again with its session id alone.
    report.storedSession = await page.evaluate(() => localStorage.getItem("session_id"));
    await page.reload();
    await until(async () => (await status(page)).trim() === "connected", "the UI to reconnect with its session");
    report.reconnected = true;
    report.modalAfterReload = await page.getByLabel("Password").isVisible();
    report.clientConnected = client.connected;
    if (client.connected) report.roomsAtEnd = await client.emitWithAck("rooms");
  } finally {
    client.disconnect();
    await browser.close();
  }
}

printReport(main, report);
