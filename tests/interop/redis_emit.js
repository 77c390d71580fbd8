// Emits one event through @socket.io/redis-emitter, then exits.
// Usage: node redis_emit.js REDIS_URL ROOM EVENT JSON_ARG; prints {"sent": true}.
const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");

async function main() {
  const [url, room, event, arg] = process.argv.slice(2);
  const client = createClient({ url });
  await client.connect();
  const emitter = new Emitter(client);
  emitter.to(room).emit(event, JSON.parse(arg), Buffer.from([1, 2, 3]));
  await client.quit();
  console.log(JSON.stringify({ sent: true }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
