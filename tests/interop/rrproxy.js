// An HTTP proxy with no affinity of any kind, for the forwarding tests and bench: every HTTP request and every
// WebSocket upgrade goes to the next backend on a fresh connection (round robin), and its answer comes back
// with "Connection: close" so that the client's next request comes on a new connection too.
// With --sticky it is the sticky load balancer instead: requests naming a sid go to the backend that answered
// that session's handshake (learnt from the handshake's answer), the rest round robin.
// Usage: node rrproxy.js [--sticky] PORT...   (the backends on 127.0.0.1); prints {"port": N} once listening,
// GET /__proxy answers how many requests each backend got.
const net = require("net");

const args = process.argv.slice(2);
const sticky = args[0] === "--sticky";
const ports = (sticky ? args.slice(1) : args).map(Number);
let next = 0;
const owners = new Map(); // sticky: sid -> backend index
const counts = ports.map(() => 0);

function pick(sid) {
  if (sticky && sid !== null && owners.has(sid)) return owners.get(sid);
  const index = next;
  next = (next + 1) % ports.length;
  return index;
}

function sidOf(head) {
  const match = /[?&]sid=([^&\s]+)/.exec(head.slice(0, head.indexOf("\r\n")));
  return match ? decodeURIComponent(match[1]) : null;
}

const server = net.createServer((client) => {
  let buffer = Buffer.alloc(0);
  let upstream = null;
  client.on("error", () => upstream && upstream.destroy());
  client.on("data", (data) => {
    if (upstream) {
      upstream.write(data);
      return;
    }
    buffer = Buffer.concat([buffer, data]);
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    let head = buffer.subarray(0, end).toString("latin1");
    const rest = buffer.subarray(end + 4);
    if (head.startsWith("GET /__proxy")) {
      const body = JSON.stringify({ counts });
      client.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    const upgrade = /\r\nupgrade:\s*websocket/i.test(head);
    if (!upgrade) {
      head = head.replace(/\r\nconnection:[^\r]*/gi, "") + "\r\nConnection: close";
    }
    const sid = sidOf(head);
    const request = Buffer.concat([Buffer.from(head + "\r\n\r\n", "latin1"), rest]);
    client.on("close", () => upstream && upstream.destroy());
    // A backend that refuses the connection (it is down) is skipped, as a load balancer's health check would.
    const attempt = (index, left) => {
      let answered = false;
      let retrying = false;
      counts[index] += 1;
      upstream = net.connect(ports[index], "127.0.0.1");
      upstream.write(request);
      let answer = sticky && sid === null ? Buffer.alloc(0) : null;
      upstream.on("data", (chunk) => {
        answered = true;
        if (answer !== null && answer.length < 4096) {
          answer = Buffer.concat([answer, chunk]);
          const found = /"sid":"([^"]+)"/.exec(answer.toString("latin1"));
          if (found) { owners.set(found[1], index); answer = null; }
        }
        client.write(chunk);
      });
      upstream.on("end", () => client.end());
      upstream.on("error", (err) => {
        if (!answered && err.code === "ECONNREFUSED" && left > 0) {
          retrying = true;
          attempt((index + 1) % ports.length, left - 1);
        } else {
          client.destroy();
        }
      });
      upstream.on("close", () => { if (!retrying) client.destroy(); });
    };
    attempt(pick(sid), ports.length - 1);
  });
});

server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: server.address().port })));
process.on("SIGTERM", () => process.exit(0));
