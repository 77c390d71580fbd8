// Socket.IO load generator speaking the Engine.IO v4 / Socket.IO v5 wire format directly
// (the `ws` package for WebSocket, Node's http agent for long-polling), so that it costs far
// less CPU than the servers it measures. Prints one JSON line with its figures.
//
//   node loadgen.js echo      URL CLIENTS SECONDS          N clients: emit "echo" with ack, wait, repeat
//   node loadgen.js echo-msgpack URL CLIENTS SECONDS       the same with socket.io-msgpack-parser's packets
//   node loadgen.js listen    URL CLIENTS MESSAGES         N clients in the room: wait for MESSAGES broadcasts
//   node loadgen.js emit      URL MESSAGES                 one client asks the server to broadcast MESSAGES times
//   node loadgen.js idle      URL CLIENTS                  open N clients, report, hold them until stdin closes
//   node loadgen.js poll-echo URL CLIENTS SECONDS          like echo, over HTTP long-polling only
//   node loadgen.js upgrade-echo URL CLIENTS SECONDS       like echo, each client connecting as browsers do
//                                                          (polling handshake, then the upgrade to WebSocket),
//                                                          20 at a time; also reports each connection's time
//   node loadgen.js flood     URL FLOODERS SECONDS BYTES   a WebSocket canary's ack round trips, alone for 2 s,
//                                                          then while FLOODERS polling clients POST BYTES-byte
//                                                          bodies of tiny events, one POST after the other
//   node loadgen.js ws-flood  URL FLOODERS SECONDS         the same canary while FLOODERS WebSocket clients send
//                                                          tiny events as fast as the server reads them
//   node loadgen.js ns-flood  URL FLOODERS SECONDS         the same canary while FLOODERS WebSocket clients join
//                                                          and leave new dynamic namespaces (/dyn-N) as fast
// echo, poll-echo and the floods print {"mark":"measuring"} when their measured window opens and
// {"mark":"measured"} when it closes; listen prints {"mark":"received"} once every broadcast arrived (before
// closing its clients): bench.py reads the server's CPU time at those marks.
// With BENCH_DEFLATE=1 the WebSocket clients offer permessage-deflate (threshold 1024, as Node's client)
// and broadcasts carry a ~2.5 KB JSON pad, big enough to be compressed.
"use strict";
const http = require("http");
const WebSocket = require("ws");

const [mode, base, a, b, c] = process.argv.slice(2);
const host = new URL(base);
const wsUrl = `ws://${host.host}/socket.io/?EIO=4&transport=websocket`;
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
const DEFLATE = process.env.BENCH_DEFLATE === "1";
const PAD = DEFLATE
  ? Array.from({ length: 40 }, (_, i) => ({ id: i, name: `user-${i}`, score: (i * 7919) % 1000, online: i % 3 === 0 }))
  : "y".repeat(64);

// One Socket.IO client over a WebSocket: calls onEvent(name, args) and resolves acks. With `sid`, the
// WebSocket upgrades that polling session (probe, then the upgrade packet) instead of opening its own.
function wsClient(onEvent, sid) {
  return new Promise((resolve, reject) => {
    const url = sid === undefined ? wsUrl : `${wsUrl}&sid=${encodeURIComponent(sid)}`;
    const ws = new WebSocket(url, { perMessageDeflate: DEFLATE ? { threshold: 1024 } : false });
    if (sid !== undefined) ws.on("open", () => ws.send("2probe"));
    const acks = new Map();
    let nextId = 0;
    const client = {
      ws,
      emit(name, arg) {
        ws.send(`42${JSON.stringify([name, arg])}`);
      },
      call(name, arg) {
        const id = nextId++;
        return new Promise((res) => {
          acks.set(id, res);
          ws.send(`42${id}${JSON.stringify([name, arg])}`);
        });
      },
      close() {
        ws.close();
      },
    };
    ws.on("message", (data) => {
      const text = data.toString();
      if (text === "3probe") {
        ws.send("5");
        return resolve(client);
      }
      if (text[0] === "2") return ws.send("3"); // Engine.IO ping
      if (text[0] === "0") return ws.send("40"); // Engine.IO open: join the default namespace
      if (text[0] !== "4") return;
      const type = text[1];
      if (type === "0") return resolve(client);
      if (type === "2") {
        const [name, ...args] = JSON.parse(text.slice(2));
        if (onEvent) onEvent(name, args);
      } else if (type === "3") {
        const m = /^43(\d+)/.exec(text);
        const id = Number(m[1]);
        const res = acks.get(id);
        if (res) {
          acks.delete(id);
          res(JSON.parse(text.slice(m[0].length)));
        }
      }
    });
    ws.on("error", reject);
    ws.on("close", () => reject(new Error("closed before it was ready")));
  });
}

// The same over socket.io-msgpack-parser (as Node's client encodes and decodes with it): call() only.
function msgpackClient() {
  const { Encoder, Decoder } = require("socket.io-msgpack-parser");
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    const encoder = new Encoder();
    const decoder = new Decoder();
    const acks = new Map();
    let nextId = 0;
    const send = (packet) => ws.send(encoder.encode(packet)[0]);
    const client = {
      ws,
      call(name, arg) {
        const id = nextId++;
        return new Promise((res) => {
          acks.set(id, res);
          send({ type: 2, data: [name, arg], id, nsp: "/" });
        });
      },
      close() {
        ws.close();
      },
    };
    decoder.on("decoded", (packet) => {
      if (packet.type === 0) return resolve(client);
      if (packet.type !== 3) return;
      const res = acks.get(packet.id);
      if (res) {
        acks.delete(packet.id);
        res(packet.data);
      }
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) return decoder.add(data);
      const text = data.toString();
      if (text[0] === "2") return ws.send("3"); // Engine.IO ping
      if (text[0] === "0") return send({ type: 0, nsp: "/" }); // Engine.IO open: join the default namespace
    });
    ws.on("error", reject);
  });
}

async function inBatches(count, size, make) {
  const out = [];
  for (let i = 0; i < count; i += size) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + size); j++) batch.push(make(j));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

function mark(name) {
  process.stdout.write(JSON.stringify({ mark: name }) + "\n");
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function echo(clients, seconds, connect = () => wsClient(), batch = 200) {
  const started = now();
  const sockets = await inBatches(clients, batch, connect);
  const connectMs = now() - started;
  const latencies = [];
  let stop = false;
  let count = 0;
  const loops = sockets.map(async (s) => {
    while (!stop) {
      const t = now();
      await s.call("echo", { t, pad: "x".repeat(32) });
      const done = now();
      if (!stop) {
        latencies.push(done - t);
        count++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  latencies.length = 0;
  count = 0;
  const t0 = now();
  mark("measuring");
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = (now() - t0) / 1000;
  const measured = count;
  mark("measured");
  const lat = latencies.slice().sort((x, y) => x - y);
  stop = true;
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 5000))]);
  sockets.forEach((s) => s.close());
  return { messages: measured, seconds: elapsed, rate: measured / elapsed,
    p50: percentile(lat, 50), p99: percentile(lat, 99), connectMs };
}

async function listen(clients, messages) {
  const arrivals = new Map(); // message number -> [first, last, count]
  let total = 0;
  let resolveAll;
  const all = new Promise((r) => (resolveAll = r));
  const started = now();
  const sockets = await inBatches(clients, 200, () =>
    wsClient((name, args) => {
      if (name !== "b") return;
      const t = now();
      const n = args[0].n;
      const entry = arrivals.get(n) || [t, t, 0];
      entry[1] = t;
      entry[2]++;
      arrivals.set(n, entry);
      total++;
      if (total === clients * messages) resolveAll();
    }),
  );
  process.stdout.write(JSON.stringify({ ready: true, connectMs: now() - started }) + "\n");
  const timeout = new Promise((r) => setTimeout(r, 120000));
  await Promise.race([all, timeout]);
  mark("received");
  const spans = [...arrivals.values()];
  const first = Math.min(...spans.map((e) => e[0]));
  const last = Math.max(...spans.map((e) => e[1]));
  sockets.forEach((s) => s.close());
  return { deliveries: total, expected: clients * messages, first, last, arrivals: [...arrivals.entries()] };
}

async function emit(messages) {
  const s = await wsClient();
  const sent = [];
  for (let n = 0; n < messages; n++) {
    sent.push([n, now()]);
    await s.call("broadcast", { n, pad: PAD });
  }
  s.close();
  return { sent };
}

async function idle(clients) {
  const started = now();
  const sockets = await inBatches(clients, 500, () => wsClient());
  process.stdout.write(JSON.stringify({ connected: sockets.length, connectMs: now() - started }) + "\n");
  await new Promise((r) => {
    process.stdin.on("end", r);
    process.stdin.on("close", r);
    process.stdin.resume();
  });
  sockets.forEach((s) => s.close());
  return { closed: sockets.length };
}

// --- long-polling -------------------------------------------------------------------------

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function request(method, path, body, withStatus) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: host.hostname, port: host.port, method, path, agent,
        headers: body ? { "Content-Type": "text/plain;charset=UTF-8", "Content-Length": Buffer.byteLength(body) } : {} },
      (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (data += c));
        res.on("end", () => resolve(withStatus ? [res.statusCode, data] : data));
      },
    );
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

async function pollClient() {
  const path = "/socket.io/?EIO=4&transport=polling";
  const open = await request("GET", path);
  const sid = JSON.parse(open.slice(1)).sid;
  const url = `${path}&sid=${sid}`;
  await request("POST", url, "40");
  const acks = new Map();
  let nextId = 0;
  let closed = false;
  let connected;
  const ready = new Promise((r) => (connected = r));
  (async () => {
    while (!closed) {
      const payload = await request("GET", url).catch(() => "");
      for (const packet of payload.split("\x1e")) {
        if (packet === "2") request("POST", url, "3");
        else if (packet.startsWith("40")) connected();
        else if (packet.startsWith("43")) {
          const m = /^43(\d+)/.exec(packet);
          const res = acks.get(Number(m[1]));
          acks.delete(Number(m[1]));
          if (res) res();
        } else if (packet === "1" || payload === "") closed = true;
      }
    }
  })();
  await ready;
  return {
    call(name, arg) {
      const id = nextId++;
      return new Promise((res) => {
        acks.set(id, res);
        request("POST", url, `42${id}${JSON.stringify([name, arg])}`);
      });
    },
    close() {
      closed = true;
      request("POST", url, "1").catch(() => {});
    },
  };
}

async function pollEcho(clients, seconds) {
  const clientsList = await inBatches(clients, 100, () => pollClient());
  let count = 0;
  let stop = false;
  const latencies = [];
  const loops = clientsList.map(async (c) => {
    while (!stop) {
      const t = now();
      await c.call("echo", { pad: "z".repeat(32) });
      if (!stop) {
        latencies.push(now() - t);
        count++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, 1000));
  count = 0;
  latencies.length = 0;
  const t0 = now();
  mark("measuring");
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = (now() - t0) / 1000;
  const measured = count;
  mark("measured");
  const lat = latencies.slice().sort((x, y) => x - y);
  stop = true;
  await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 5000))]);
  clientsList.forEach((c) => c.close());
  return { messages: measured, seconds: elapsed, rate: measured / elapsed, p50: percentile(lat, 50),
    p99: percentile(lat, 99) };
}

// A client that connects as browsers do: polling handshake and namespace, then the upgrade to WebSocket
// (probe, pong, upgrade packet) while a poll is parked; resolves with what wsClient resolves with, once
// upgraded. Each connection's time goes to connectTimes.
const connectTimes = [];

function upgradeClient() {
  const path = "/socket.io/?EIO=4&transport=polling";
  const started = now();
  return (async () => {
    const open = await request("GET", path);
    const sid = JSON.parse(open.slice(1)).sid;
    const url = `${path}&sid=${sid}`;
    await request("POST", url, "40");
    let upgraded = false;
    const polls = (async () => {
      while (!upgraded) {
        const payload = await request("GET", url).catch(() => "6");
        if (payload.split("\x1e").some((p) => p === "1")) return;
      }
    })();
    const client = await wsClient(undefined, sid);
    upgraded = true;
    connectTimes.push(now() - started);
    await polls;
    return client;
  })();
}

async function upgradeEcho(clients, seconds) {
  const result = await echo(clients, seconds, upgradeClient, 20);
  const sorted = connectTimes.slice().sort((x, y) => x - y);
  return { ...result, connects: sorted.length, connectRate: sorted.length / (result.connectMs / 1000),
    connectP50: percentile(sorted, 50), connectP99: percentile(sorted, 99) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A polling body of tiny Socket.IO events (42["n",k]) at most `bytes` long.
function tinyEvents(bytes) {
  const parts = [];
  let size = -1;
  for (let k = 0; ; k++) {
    const part = `42["n",${k}]`;
    if (size + 1 + part.length > bytes) break;
    parts.push(part);
    size += 1 + part.length;
  }
  return { body: parts.join("\x1e"), packets: parts.length };
}

// A polling client that only POSTs, one request at a time (as engine.io-client does); pongs ride
// along with the next body.
async function floodClient() {
  const path = "/socket.io/?EIO=4&transport=polling";
  const sid = JSON.parse((await request("GET", path)).slice(1)).sid;
  const url = `${path}&sid=${sid}`;
  await request("POST", url, "40");
  let pong = false;
  let closed = false;
  (async () => {
    while (!closed) {
      const payload = await request("GET", url).catch(() => "1");
      for (const packet of payload.split("\x1e")) {
        if (packet === "2") pong = true;
        else if (packet === "1" || payload === "") closed = true;
      }
    }
  })();
  return {
    async post(body) {
      const [status] = await request("POST", url, pong ? `3\x1e${body}` : body, true);
      pong = false;
      return status;
    },
    close() {
      closed = true;
      request("POST", url, "1").catch(() => {});
    },
  };
}

// A WebSocket client that sends tiny events (42["n",k]) in batches of 100 frames, as fast as the
// server reads them: it waits while more than 1 MB it wrote is still unsent.
async function wsFloodClient(namespaces) {
  const client = await wsClient();
  const ws = client.ws;
  let closed = false;
  let k = 0;
  // With `namespaces`, 50 new namespaces joined and left per batch (CONNECT then DISCONNECT).
  const batch = namespaces
    ? () => {
        for (let i = 0; i < 50; i++, k++) {
          ws.send(`40/dyn-${k},`);
          ws.send(`41/dyn-${k},`);
        }
      }
    : () => {
        for (let i = 0; i < 100; i++) ws.send(`42["n",${k++}]`);
      };
  return {
    async post() {
      while (ws.bufferedAmount > 1 << 20) {
        if (closed || ws.readyState !== WebSocket.OPEN) return 0;
        await sleep(1);
      }
      if (ws.readyState !== WebSocket.OPEN) return 0;
      batch();
      await new Promise((res) => setImmediate(res));
      return 200;
    },
    close() {
      closed = true;
      ws.close();
    },
  };
}

async function flood(flooders, seconds, bytes, namespaces) {
  const canary = await wsClient();
  const sample = async (ms) => {
    const lat = [];
    const end = now() + ms;
    while (now() < end) {
      const t = now();
      await canary.call("echo", { t });
      lat.push(now() - t);
      await sleep(10);
    }
    return lat.sort((x, y) => x - y);
  };
  const idle = await sample(2000);
  const overWebSocket = bytes === undefined;
  const { body, packets } = overWebSocket ? { body: "", packets: 100 } : tinyEvents(bytes);
  const clients = await Promise.all(
    Array.from({ length: flooders }, () => (overWebSocket ? wsFloodClient(namespaces) : floodClient())),
  );
  let stop = false;
  let posts = 0;
  let refused = 0;
  const loops = clients.map(async (c) => {
    while (!stop) {
      const status = await c.post(body).catch(() => 0); // 0: the connection was dropped
      if (status !== 200) {
        refused++;
        return;
      }
      posts++;
    }
  });
  await sleep(500); // the flood under way
  const before = posts;
  const t0 = now();
  mark("measuring");
  const flooded = await sample(seconds * 1000);
  const elapsed = (now() - t0) / 1000;
  const done = posts - before;
  mark("measured");
  stop = true;
  await Promise.race([Promise.all(loops), sleep(15000)]);
  clients.forEach((c) => c.close());
  canary.close();
  return {
    idleP50: percentile(idle, 50), idleP99: percentile(idle, 99),
    p50: percentile(flooded, 50), p99: percentile(flooded, 99), max: flooded[flooded.length - 1],
    samples: flooded.length, postsPerS: done / elapsed, packetsPerS: (done * packets) / elapsed,
    bodyBytes: body.length, refused,
  };
}

const runs = {
  echo: () => echo(Number(a), Number(b)),
  "echo-msgpack": () => echo(Number(a), Number(b), msgpackClient),
  listen: () => listen(Number(a), Number(b)),
  emit: () => emit(Number(a)),
  idle: () => idle(Number(a)),
  "poll-echo": () => pollEcho(Number(a), Number(b)),
  "upgrade-echo": () => upgradeEcho(Number(a), Number(b)),
  flood: () => flood(Number(a), Number(b), Number(c)),
  "ws-flood": () => flood(Number(a), Number(b)),
  "ns-flood": () => flood(Number(a), Number(b), undefined, true),
};

runs[mode]()
  .then((result) => {
    process.stdout.write(JSON.stringify(result) + "\n");
    setTimeout(() => process.exit(0), 100);
  })
  .catch((err) => {
    process.stdout.write(JSON.stringify({ error: String(err && err.stack ? err.stack : err) }) + "\n");
    process.exit(1);
  });
