// The official TypeScript SDK's side of `python -m benchmarks.compare`.
//
//   node benchmarks/ts_apply.mjs frames SHAPE N UPDATES QUERY_SET REQUEST OUT
//       Serialize, with the SDK's own ServerMessage serializer, the messages of one case: InitialConnection,
//       a SubscribeApplied of N rows, then UPDATES TransactionUpdates of 100 row updates each (a delete and
//       an insert of the same key). They are written to OUT as frames (u32 length, then the v2 frame:
//       compression byte 0 and the message), preceded by one JSON line describing the expected final state.
//   node --expose-gc benchmarks/ts_apply.mjs run FRAMES
//       Play the frames to the SDK's real DbConnection through an in-memory WebSocket (globalThis.WebSocket,
//       so the SDK's own opening and decompression code runs), with a row callback registered, and print
//       one JSON line: the time to apply the SubscribeApplied (until its last insert callback), the time to
//       apply the update stream (until its last update callback), the heap bytes per cached row (and the
//       growth of the process's resident memory per row, in a fresh process: the first run's), and a
//       checksum of the final cache that the caller compares with the expected one.
//
// Shapes: `fixed_shared` and `fixed_distinct` (table `entity`: id u32 primary key, owner Identity, x f32,
// y f32, hp u32; the owners are 16 identities shared by all rows, or one per row) and `variable` (table
// `item`: id u32 primary key, name String, nick Option<String>, tags Array<u32> of 0 to 3 elements).

import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { MESSAGE_INTERNALS, importInternals, requireInstalled } from '../tests/interop/sdk_internal.mjs';

requireInstalled();
const sdk = await importInternals('.stdb_internal.mjs', MESSAGE_INTERNALS);
const {
  AlgebraicType,
  BinaryWriter,
  ConnectionId,
  DbConnectionBuilder,
  DbConnectionImpl,
  Identity,
  ServerMessage,
  SubscriptionBuilderImpl,
  procedures,
  reducers,
  schema,
  t,
  table,
} = sdk;

// ---- the tables ------------------------------------------------------------------------------------------
const EntityRow = t.row({
  id: t.u32().primaryKey(),
  owner: t.identity(),
  x: t.f32(),
  y: t.f32(),
  hp: t.u32(),
});
const ItemRow = t.row({
  id: t.u32().primaryKey(),
  name: t.string(),
  nick: t.option(t.string()),
  tags: t.array(t.u32()),
});
const ENTITY_TYPE = t.object('Entity', {
  id: t.u32(),
  owner: t.identity(),
  x: t.f32(),
  y: t.f32(),
  hp: t.u32(),
}).algebraicType;
const ITEM_TYPE = t.object('Item', {
  id: t.u32(),
  name: t.string(),
  nick: t.option(t.string()),
  tags: t.array(t.u32()),
}).algebraicType;

const pk = (tableName, column) => ({
  name: tableName,
  indexes: [{ accessor: column, name: `${tableName}_${column}_idx_btree`, algorithm: 'btree', columns: [column] }],
  constraints: [{ name: `${tableName}_${column}_key`, constraint: 'unique', columns: [column] }],
});
const tablesSchema = schema({ entity: table(pk('entity', 'id'), EntityRow), item: table(pk('item', 'id'), ItemRow) });
const REMOTE_MODULE = {
  versionInfo: { cliVersion: '2.0.0' },
  tables: tablesSchema.schemaType.tables,
  reducers: reducers().reducersType.reducers,
  ...procedures(),
};
class DbConnection extends DbConnectionImpl {
  static builder = () => new DbConnectionBuilder(REMOTE_MODULE, config => new DbConnection(config));
  subscriptionBuilder = () => new SubscriptionBuilderImpl(this);
}

// ---- the rows of a case (the same generator as the Python side's, see benchmarks/compare.py) --------------
const F32 = new Float32Array(1);
const f32 = v => ((F32[0] = v), F32[0]);
const identityHex = i => (BigInt(i + 1) * 0x9e3779b97f4a7c15n).toString(16).padStart(64, '0').slice(-64);

function makeRow(shape, id, version) {
  if (shape === 'variable') {
    const tags = [];
    for (let k = 0; k < (id + version) % 4; k++) tags.push(id * 7 + k);
    return {
      id,
      name: `item-${id}-v${version}`,
      nick: (id + version) % 3 === 0 ? undefined : `n${id % 1000}`,
      tags,
    };
  }
  const owner = shape === 'fixed_shared' ? id % 16 : id;
  return {
    id,
    owner: Identity.fromString(identityHex(owner)),
    x: f32(id * 0.5 + version),
    y: f32(-id * 0.25),
    hp: 100 + version,
  };
}

function checksumRow(shape, row) {
  if (shape === 'variable') {
    let s = row.id * 31 + row.name.length + (row.nick === undefined ? 0 : row.nick.length * 7);
    for (const tag of row.tags) s += tag;
    return s;
  }
  return row.id * 31 + row.hp + Math.round(row.x * 4) + Number(row.owner.__identity__ % 1000n);
}

// ---- frames ------------------------------------------------------------------------------------------------
function serializeValue(type, value) {
  const w = new BinaryWriter(64);
  AlgebraicType.makeSerializer(type)(w, value);
  return w.getBuffer().slice();
}

function frame(message) {
  const w = new BinaryWriter(1024);
  ServerMessage.serialize(w, message);
  const body = w.getBuffer();
  const out = new Uint8Array(body.length + 1); // compression byte 0: none
  out.set(body, 1);
  return out;
}

function rowList(rows) {
  const sizes = new Set(rows.map(r => r.length));
  const data = new Uint8Array(rows.reduce((n, r) => n + r.length, 0));
  const offsets = [];
  let pos = 0;
  for (const r of rows) {
    offsets.push(BigInt(pos));
    data.set(r, pos);
    pos += r.length;
  }
  const fixed = sizes.size === 1 && rows.length > 0 && rows[0].length > 0;
  return {
    sizeHint: fixed ? { tag: 'FixedSize', value: rows[0].length } : { tag: 'RowOffsets', value: offsets },
    rowsData: data,
  };
}

function makeFrames(shape, n, updates, querySet, request) {
  const tableName = shape === 'variable' ? 'item' : 'entity';
  const type = shape === 'variable' ? ITEM_TYPE : ENTITY_TYPE;
  const version = new Array(n).fill(0);
  const frames = [
    frame({
      tag: 'InitialConnection',
      value: {
        identity: Identity.fromString(identityHex(999999)),
        connectionId: ConnectionId.fromString('00000000000000000000000000000007'),
        token: 'bench-token',
      },
    }),
  ];
  const initial = [];
  for (let id = 0; id < n; id++) initial.push(serializeValue(type, makeRow(shape, id, 0)));
  frames.push(
    frame({
      tag: 'SubscribeApplied',
      value: { requestId: request, querySetId: { id: querySet }, rows: { tables: [{ table: tableName, rows: rowList(initial) }] } },
    })
  );
  let next = 0;
  for (let u = 0; u < updates; u++) {
    const ins = [];
    const del = [];
    for (let k = 0; k < 100; k++) {
      const id = next;
      next = (next + 1) % n;
      del.push(serializeValue(type, makeRow(shape, id, version[id])));
      version[id] += 1;
      ins.push(serializeValue(type, makeRow(shape, id, version[id])));
    }
    frames.push(
      frame({
        tag: 'TransactionUpdate',
        value: {
          querySets: [
            {
              querySetId: { id: querySet },
              tables: [{ tableName, rows: [{ tag: 'PersistentTable', value: { inserts: rowList(ins), deletes: rowList(del) } }] }],
            },
          ],
        },
      })
    );
  }
  let checksum = 0;
  for (let id = 0; id < n; id++) checksum += checksumRow(shape, makeRow(shape, id, version[id]));
  return { frames, expected: { shape, table: tableName, rows: n, updates, checksum } };
}

function writeFrames(path, { frames, expected }) {
  const head = Buffer.from(JSON.stringify(expected) + '\n');
  const parts = [head];
  for (const f of frames) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(f.length);
    parts.push(len, Buffer.from(f.buffer, f.byteOffset, f.length));
  }
  writeFileSync(path, Buffer.concat(parts));
}

function readFrames(path) {
  const buf = readFileSync(path);
  const nl = buf.indexOf(10);
  const expected = JSON.parse(buf.subarray(0, nl).toString());
  const frames = [];
  for (let pos = nl + 1; pos < buf.length; ) {
    const len = buf.readUInt32LE(pos);
    const copy = new ArrayBuffer(len);
    new Uint8Array(copy).set(buf.subarray(pos + 4, pos + 4 + len));
    frames.push(copy);
    pos += 4 + len;
  }
  return { expected, frames };
}

// ---- the in-memory WebSocket --------------------------------------------------------------------------------
class MemoryWebSocket {
  static last = null;
  constructor(url, protocols) {
    this.url = url;
    this.protocol = 'v2.bsatn.spacetimedb';
    if (!protocols.includes(this.protocol)) throw new Error(`the SDK does not offer v2: ${protocols}`);
    this.readyState = 0;
    this.binaryType = 'blob';
    this.sent = [];
    MemoryWebSocket.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }
  send(data) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
    this.onclose?.({ code: 1000, reason: '' });
  }
  deliver(frame) {
    this.onmessage({ data: frame });
  }
}

const tick = () => new Promise(resolve => setTimeout(resolve, 0));
const heap = () => {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const rss = () => {
  globalThis.gc?.();
  return process.memoryUsage().rss;
};

async function once(expected, frames) {
  const { shape, table: tableName, rows: n, updates } = expected;
  const before = heap();
  const rssBefore = rss();
  let inserts = 0;
  let changed = 0;
  let wanted = null;
  let done = null;
  MemoryWebSocket.last = null;
  const conn = DbConnection.builder().withUri('ws://memory').withDatabaseName('bench').withCompression('none').build();
  const handle = conn.db[tableName];
  handle.onInsert(() => {
    inserts += 1;
    if (inserts === wanted) done();
  });
  handle.onUpdate(() => {
    changed += 1;
    if (changed === wanted) done();
  });
  while (!MemoryWebSocket.last || MemoryWebSocket.last.readyState !== 1) await tick();
  const ws = MemoryWebSocket.last;
  ws.deliver(frames[0]); // InitialConnection
  conn.subscriptionBuilder().subscribe([`SELECT * FROM ${tableName}`]);
  await tick();

  const until = count =>
    new Promise(resolve => {
      wanted = count;
      done = resolve;
    });
  let finished = until(n);
  let t0 = performance.now();
  ws.deliver(frames[1]);
  await finished;
  const initialMs = performance.now() - t0;
  if (inserts !== n) throw new Error(`initial: ${inserts} inserts, expected ${n}`);
  const afterLoad = heap();
  const rssAfterLoad = rss();

  finished = until(updates * 100);
  t0 = performance.now();
  for (let i = 2; i < frames.length; i++) ws.deliver(frames[i]);
  await finished;
  const updatesMs = performance.now() - t0;

  let checksum = 0;
  let count = 0;
  for (const row of handle.iter()) {
    checksum += checksumRow(shape, row);
    count += 1;
  }
  conn.disconnect();
  await tick();
  return {
    initial_ms: initialMs,
    updates_ms: updatesMs,
    bytes_per_row: (afterLoad - before) / n,
    rss_per_row: (rssAfterLoad - rssBefore) / n,
    rows: count,
    checksum,
    ok: count === n && checksum === expected.checksum && changed === updates * 100,
  };
}

async function run(path) {
  const { expected, frames } = readFrames(path);
  globalThis.WebSocket = MemoryWebSocket;
  const warm = await once(expected, frames); // the same case once first, untimed: the JIT warms up
  const result = await once(expected, frames);
  result.ok = result.ok && warm.ok;
  // the heap growth of the first run: in the second, the first connection's garbage muddles the count
  result.bytes_per_row = warm.bytes_per_row;
  result.rss_per_row = warm.rss_per_row;
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.ok ? 0 : 1);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'frames') {
  const [shape, n, updates, querySet, request, out] = args;
  writeFrames(out, makeFrames(shape, Number(n), Number(updates), Number(querySet), Number(request)));
} else if (mode === 'run') {
  await run(args[0]);
} else {
  process.stderr.write('usage: ts_apply.mjs frames SHAPE N UPDATES QUERY_SET REQUEST OUT | run FRAMES\n');
  process.exit(2);
}
