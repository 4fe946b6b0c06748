// The official TypeScript SDK's reducer round trips, for `python -m benchmarks.compare`:
//
//   node benchmarks/ts_round_trip.mjs URI DATABASE CALLS
//
// Connects to the dev server serving the quickstart chat module (over `ws` on Node 20, as the interop tests
// do), calls `send_message` CALLS times one after another, each awaited (the promise settles when the
// SDK has applied the ReducerResult), after 50 untimed calls, and prints one JSON line: every round trip
// in milliseconds.

import { performance } from 'node:perf_hooks';

import { DbConnection } from '../tests/interop/chat_bindings.mjs';

const { WebSocket } = await import('../tests/interop/node_modules/ws/wrapper.mjs');
globalThis.WebSocket = WebSocket;

const [uri, database, calls] = process.argv.slice(2);
const conn = await new Promise((resolve, reject) => {
  const built = DbConnection.builder()
    .withUri(uri)
    .withDatabaseName(database)
    .withCompression('none')
    .onConnect(() => resolve(built))
    .onConnectError((_ctx, error) => reject(error))
    .build();
});
for (let i = 0; i < 50; i++) await conn.reducers.sendMessage({ text: `warm ${i}` });
const times = [];
for (let i = 0; i < Number(calls); i++) {
  const t0 = performance.now();
  await conn.reducers.sendMessage({ text: `message ${i}` });
  times.push(performance.now() - t0);
}
process.stdout.write(JSON.stringify({ round_trips_ms: times }) + '\n');
conn.disconnect();
process.exit(0);
