// What @socket.io/redis-emitter publishes for a list of calls, without Redis: the emitter is given a
// client whose publish() records (channel, message).
// Usage: node redis_emitter_bytes.js CALLS_JSON; prints [[[channel, base64], ...] for each call].
// A call is {key?, nsp?, chain: [[method, ...args]], method, args}; in args, {"$bytes": [n, ...]} is a
// Buffer and {"$date": ms} a Date.
const { Emitter } = require("@socket.io/redis-emitter");

function revive(value) {
  if (Array.isArray(value)) return value.map(revive);
  if (value !== null && typeof value === "object") {
    if ("$bytes" in value) return Buffer.from(value.$bytes);
    if ("$date" in value) return new Date(value.$date);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  }
  return value;
}

const calls = JSON.parse(process.argv[2]);
const report = calls.map((call) => {
  const published = [];
  const client = {
    publish(channel, message) {
      published.push([channel, Buffer.from(message).toString("base64")]);
      return Promise.resolve(1);
    },
  };
  let target = new Emitter(client, call.key === undefined ? undefined : { key: call.key });
  if (call.nsp !== undefined) target = target.of(call.nsp);
  for (const [method, ...args] of call.chain || []) {
    target = method === "volatile" ? target.volatile : target[method](...revive(args));
  }
  target[call.method](...revive(call.args));
  return published;
});
console.log(JSON.stringify(report));
