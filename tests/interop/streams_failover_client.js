// Recovery across nodes with the official socket.io-client, through a proxy in front of several nodes sharing
// the Redis Streams adapter (tests/forwarding/app.py on each).
// Usage: [FAILOVER_TIMEOUT_MS=30000] node streams_failover_client.js PROXY_URL
// A client sets its socket.data, joins room "r" and gets one room message from a witness on another node, then prints
// {"pid": PID} (the node it is on) and waits: the test kills or stops that node. Once the client lost it, the
// witness sends two more to the room; the client reconnects by itself (the proxy sends it to a live node),
// then the witness sends one more. Prints one JSON line with what the client saw, then exits.
const { io } = require("socket.io-client");
const { ack, connected } = require("./peer");

const [url] = process.argv.slice(2);
const options = { transports: ["websocket"], reconnectionDelay: 50, reconnectionDelayMax: 200 };

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const report = {};
// A bound on the whole run: a client that is never recovered would wait for the last message forever.
setTimeout(() => {
  process.stdout.write(JSON.stringify({ ...report, timedOut: true }) + "\n");
  process.exit(1);
}, Number(process.env.FAILOVER_TIMEOUT_MS || 30000));

async function main() {
  const socket = io(url, { ...options, forceNew: true });
  const messages = [];
  socket.on("news", (...args) => messages.push(args));
  await connected(socket);
  const [{ pid }] = await ack(socket, "whoami");
  let witness;
  for (;;) {
    witness = io(url, { ...options, forceNew: true });
    await connected(witness);
    const [{ pid: other }] = await ack(witness, "whoami");
    if (other !== pid) break;
    witness.disconnect();
  }
  report.firstId = socket.id;
  await ack(socket, "keep", { note: "kept" }); // written to Redis with the session when it joins the room
  await ack(socket, "join", "r");
  await ack(witness, "shout", "r", "before");
  while (messages.length < 1) await sleep(10);
  const gone = new Promise((resolve) => socket.once("disconnect", (reason) => resolve(reason)));
  const back = new Promise((resolve) => socket.once("connect", resolve));
  process.stdout.write(JSON.stringify({ pid }) + "\n");
  report.disconnect = await gone;
  await ack(witness, "shout", "r", "missed 1");
  await ack(witness, "shout", "r", "missed 2");
  await back;
  report.secondId = socket.id;
  report.recovered = socket.recovered;
  const [{ pid: second }] = await ack(socket, "whoami");
  report.otherNode = second !== pid;
  [report.rooms] = await ack(socket, "rooms");
  [report.data] = await ack(socket, "data");
  await ack(witness, "shout", "r", "after");
  while (!messages.some((m) => m[0] === "after")) await sleep(10);
  report.messages = messages.map((m) => m[0]);
  report.offsets = messages.map((m) => typeof m[m.length - 1]);
  socket.disconnect();
  witness.disconnect();
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
