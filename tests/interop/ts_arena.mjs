// Plays the arena (Blackholio) with the official SpacetimeDB TypeScript SDK (npm `spacetimedb`) against a
// running server, as the official web client does: subscribe to the public tables (the event table in a query
// set of its own), enter the game, steer toward the nearest food until one of our circles eats, and report.
// Used by test_ts_arena.py, which starts our dev server with demos/arena/module.py and asserts on the JSON.
//
//   node ts_arena.mjs --uri ws://HOST:PORT [--db blackholio] [--deadline MS]
//
// Output: one JSON object on stdout: {ok, failed, steps, me, player, world_size, food, circle, moved, eat}.
// Exit code 0 when every step completed, 1 otherwise (the JSON is still printed), 2 on bad usage.

import { requireInstalled } from './sdk_internal.mjs';
import { stepper, withTimeout } from './steps.mjs';

requireInstalled(['ws']);
// Node 20 has no global WebSocket: the `ws` package stands in for it, as a web page's own would
const { WebSocket } = await import('ws');
globalThis.WebSocket = WebSocket;
const { DbConnection } = await import('./arena_bindings.mjs');

const argv = process.argv.slice(2);
const opts = { db: 'blackholio', deadline: 30000, stepTimeout: 10000 };
while (argv.length) {
  const flag = argv.shift();
  const value = argv.shift();
  if (flag === '--uri') opts.uri = value;
  else if (flag === '--db') opts.db = value;
  else if (flag === '--deadline') opts.deadline = Number(value);
  else {
    process.stderr.write(`unknown option ${flag}\n`);
    process.exit(2);
  }
}
if (!opts.uri) {
  process.stderr.write('usage: node ts_arena.mjs --uri ws://HOST:PORT [--db NAME] [--deadline MS]\n');
  process.exit(2);
}

const out = { ok: false, failed: null, steps: [] };
const started = Date.now();
const log = []; // the callbacks, in order: {seq, table, op, id}
let seq = 0;

const step = stepper(out, () => Date.now() - started);

/** Resolves when `pred()` holds, checking every 20 ms. */
function until(pred, what, ms = opts.stepTimeout) {
  return withTimeout(
    new Promise(resolve => {
      const check = () => {
        const v = pred();
        if (v) resolve(v);
        else setTimeout(check, 20);
      };
      check();
    }),
    ms,
    what
  );
}

const hex = id => id.toHexString();
const rows = table => Array.from(conn.db[table].iter());

let conn;
let me;
const events = []; // consume events seen: {seq, consumed, consumer}

async function main() {
  await step('connect', () =>
    withTimeout(
      new Promise((resolve, reject) => {
        conn = DbConnection.builder()
          .withUri(opts.uri)
          .withDatabaseName(opts.db)
          .onConnect((_c, identity) => {
            me = hex(identity);
            resolve();
          })
          .onConnectError((_ctx, error) => reject(new Error(`connect error: ${error && error.message}`)))
          .build();
        for (const table of ['entity', 'circle', 'food']) {
          conn.db[table].onInsert((_ctx, row) => log.push({ seq: seq++, table, op: 'insert', id: row.entity_id }));
          conn.db[table].onDelete((_ctx, row) => log.push({ seq: seq++, table, op: 'delete', id: row.entity_id }));
        }
        conn.db.entity.onUpdate((_ctx, _old, row) => log.push({ seq: seq++, table: 'entity', op: 'update', id: row.entity_id }));
        conn.db.consume_entity_event.onInsert((_ctx, row) => {
          const e = { seq: seq++, consumed: row.consumed_entity_id, consumer: row.consumer_entity_id };
          events.push(e);
          log.push({ ...e, table: 'consume_entity_event', op: 'insert' });
        });
      }),
      opts.stepTimeout,
      'onConnect'
    )
  );
  out.me = me;
  const subscribe = queries =>
    withTimeout(
      new Promise((resolve, reject) => {
        conn
          .subscriptionBuilder()
          .onApplied(() => resolve())
          .onError((_ctx, error) => reject(new Error(`subscription error: ${error && error.message}`)))
          .subscribe(queries);
      }),
      opts.stepTimeout,
      `SubscribeApplied for ${JSON.stringify(queries)}`
    );
  await step('subscribe to the game', () =>
    subscribe(['SELECT * FROM config', 'SELECT * FROM player', 'SELECT * FROM entity', 'SELECT * FROM circle', 'SELECT * FROM food'])
  );
  await step('subscribe to the event table', () => subscribe(['SELECT * FROM consume_entity_event']));
  const mine = () => rows('player').find(p => hex(p.identity) === me);
  const player = await step('own player row', () => until(mine, 'the player row of our identity'));
  out.world_size = Number(rows('config')[0].world_size);
  await step('enter_game', () => withTimeout(conn.reducers.enterGame({ name: 'TypeScript' }), opts.stepTimeout, 'enter_game'));
  const circle = await step('own circle', () =>
    until(() => rows('circle').find(c => c.player_id === player.player_id), 'a circle of our player')
  );
  out.player = { player_id: player.player_id, name: mine().name };
  out.circle = circle.entity_id;
  const entity = () => rows('entity').find(e => e.entity_id === circle.entity_id);
  out.food = await step('600 food', () => until(() => (rows('food').length >= 600 ? rows('food').length : 0), '600 food rows'));
  const start = entity();
  out.start = { x: start.position.x, y: start.position.y, mass: start.mass };

  // steer toward the nearest food, 10 times a second, until our circle eats (a consume event names it)
  const steer = async () => {
    const e = entity();
    if (!e) return;
    const food = new Set(rows('food').map(f => f.entity_id));
    let best = null;
    for (const o of rows('entity')) {
      if (!food.has(o.entity_id)) continue;
      const d = Math.hypot(o.position.x - e.position.x, o.position.y - e.position.y);
      if (!best || d < best.d) best = { d, dx: o.position.x - e.position.x, dy: o.position.y - e.position.y };
    }
    // full speed far away, slower near (10 units a tick at full speed would step over a food's centre)
    const throttle = best ? Math.min(1, best.d / 15) : 0;
    if (best && best.d > 0) {
      await conn.reducers.updatePlayerInput({ direction: { x: (best.dx / best.d) * throttle, y: (best.dy / best.d) * throttle } });
    }
  };
  const eat = await step('eat', () =>
    withTimeout(
      new Promise((resolve, reject) => {
        const tick = async () => {
          try {
            const ate = events.find(ev => ev.consumer === circle.entity_id);
            if (ate) return resolve(ate);
            await steer();
            setTimeout(tick, 100);
          } catch (e) {
            reject(e);
          }
        };
        tick();
      }),
      20000,
      'a consume event naming our circle'
    )
  );
  const end = entity();
  out.moved = Math.hypot(end.position.x - start.position.x, end.position.y - start.position.y);
  const deletes = log.filter(l => l.op === 'delete' && l.id === eat.consumed).map(l => ({ table: l.table, seq: l.seq }));
  out.eat = {
    consumed: eat.consumed,
    consumer: eat.consumer,
    mass_after: end.mass,
    consumed_still_cached: rows('entity').some(e => e.entity_id === eat.consumed),
    deletes,
    event_seq: eat.seq,
    events_cached: Array.from(conn.db.consume_entity_event.iter()).length,
  };
  out.ok = true;
}

const deadline = setTimeout(() => {
  out.failed = out.failed || { step: 'deadline', error: `the scenario took longer than ${opts.deadline} ms` };
  finish(1);
}, opts.deadline);

function finish(code) {
  clearTimeout(deadline);
  try {
    conn && conn.disconnect();
  } catch {}
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(code);
}

main().then(
  () => finish(0),
  e => {
    out.failed = out.failed || { step: 'main', error: e.message };
    finish(1);
  }
);
