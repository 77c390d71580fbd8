// The bytes socket.io-msgpack-parser's Encoder writes for packets built as Node's socket.io and
// socket.io-client build them (key order included), for tests/socketio/test_msgpack.py to compare.
// Usage: node msgpack_bytes.js; prints one JSON line {name: hex}.
const { Encoder } = require("socket.io-msgpack-parser");

const encoder = new Encoder();
const long = (n) => "x".repeat(n);
const bytes = (n) => Buffer.alloc(n, 7);
const keys = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => ["k" + i, i]));

// Server side (socket.ts, client.ts, broadcast-operator.ts):
const server = {
  event: { type: 2, data: ["hello", Buffer.from([1, 2]), { a: 1.5 }], nsp: "/" },
  eventWithAck: { type: 2, data: ["question", 41], id: 12, nsp: "/custom" },
  ack: { id: 3, type: 3, data: ["got", Buffer.from([5])], nsp: "/x" },
  connect: { type: 0, data: { sid: "abc" }, nsp: "/" },
  connectWithPid: { type: 0, data: { sid: "abc", pid: "p1" }, nsp: "/" },
  disconnect: { type: 1, nsp: "/c" },
  connectError: { type: 4, data: { message: "not authorized", data: { code: 401 } }, nsp: "/admin" },
  date: { type: 2, data: ["d", new Date(Date.UTC(2020, 0, 1, 12, 30, 15, 250)), new Date(-1500)], nsp: "/" },
  integers: {
    type: 2,
    data: ["n", 0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
      -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53 - 1)],
    nsp: "/",
  },
  // Not 1e300: notepack.io 2 writes integral numbers beyond 2**53 as garbage uint64, txrealtime as float64.
  floats: { type: 2, data: ["f", 1.5, -0.25, 5e-324], nsp: "/" },
  constants: { type: 2, data: ["c", null, true, false], nsp: "/" },
  strings: { type: 2, data: ["s", "", long(31), long(32), long(255), long(256), long(65536), "é€😀"], nsp: "/" },
  binaries: { type: 2, data: ["b", bytes(0), bytes(255), bytes(256), bytes(65536)], nsp: "/" },
  containers: {
    type: 2,
    data: ["a", new Array(15).fill(1), new Array(16).fill(1), new Array(65536).fill(0), keys(15), keys(16), [[[]]], {}],
    nsp: "/",
  },
};

// What socket.io-client 4 writes (socket.ts): the event's "options", an undefined CONNECT payload.
const client = {
  clientEvent: { type: 2, data: ["echo", "hi", undefined, null], options: { compress: true }, id: 0, nsp: "/" },
  clientAck: { type: 3, id: 7, data: [42, Buffer.from([9])], nsp: "/" },
  clientConnect: { type: 0, data: undefined, nsp: "/" },
  clientConnectAuth: { type: 0, data: { token: "s3cret" }, nsp: "/admin" },
  clientArrayBuffer: { type: 2, data: ["ab", new Uint8Array([1, 2, 3])], nsp: "/" },
  serverConnectUndefinedPid: { type: 0, data: { sid: "abc", pid: undefined }, nsp: "/" },
};

const out = {};
for (const [name, packet] of Object.entries({ ...server, ...client })) {
  const [message] = encoder.encode(packet);
  out[name] = Buffer.from(message).toString("hex");
}
console.log(JSON.stringify(out));
