// What the Node Socket.IO peer scripts share: values as JSON can report them, and small promises over a socket.

// JSON-friendly view of what arrived: Buffers become {binary: [...]}, Dates {date: ISO string}.
function plain(value) {
  if (value instanceof Date) return { date: value.toISOString() };
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer) return { binary: Array.from(Buffer.from(value)) };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(err));
  });
}

function next(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(plain(args))));
}

// emitWithAck resolves with the first value only; this keeps every value of the answer.
function ack(socket, event, ...args) {
  return new Promise((resolve) => socket.emit(event, ...args, (...answer) => resolve(plain(answer))));
}

// Resolves once an "upgrade" mode client is on WebSocket (at once for the other modes).
function upgraded(socket, mode) {
  const engine = socket.io.engine;
  if (mode !== "upgrade" || engine.transport.name === "websocket") return Promise.resolve();
  return new Promise((resolve) => engine.once("upgrade", () => resolve()));
}

module.exports = { ack, connected, next, plain, upgraded };
