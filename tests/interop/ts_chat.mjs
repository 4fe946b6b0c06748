// Drives the official SpacetimeDB TypeScript SDK (npm `spacetimedb`, pinned in package.json) against a running
// server that hosts the quickstart chat module, through real `DbConnection`s built from chat_bindings.mjs.
// Used by test_ts_server.py, which starts our dev server and asserts on the JSON printed here.
//
//   node ts_chat.mjs <scenario> --uri ws://127.0.0.1:PORT [--db quickstart-chat] [--protocol v2|v3|default]
//                    [--compression gzip|none] [--step-timeout MS] [--deadline MS]
//
// Scenarios:
//   chat             two clients subscribe, set names, send messages, see each other's rows and updates,
//                    get the reducers' errors, and see each other go offline
//   reconnect        a client reconnects with its saved token (withToken) and gets its identity back
//   oneoff-unsubscribe  one-off queries through the SDK's connection, then unsubscribe() / unsubscribeThen()
//
// Output: one JSON object on stdout: {scenario, ok, failed: {step, error} | null, steps, ...observations}.
// Exit code 0 when every step completed (the assertions are made by the Python test), 1 when a step failed or
// timed out (the JSON is still printed), 2 on bad usage, 3 when the SDK is not installed.
//
// Only the public API of the SDK is used for the clients. Two things need its internals, taken from a copy of
// its bundle with a few more exports (the gitignored `.stdb_internal_chat.mjs`):
//   * `WebsocketDecompressAdapter`, wrapped in a `withWSFn` factory that taps the frames (decoded with the SDK's
//     own `ClientMessage` / `ServerMessage`) and can offer only `v2.bsatn.spacetimedb` (--protocol v2);
//   * SDK 2.10.1 has no one-off query API (it logs and drops `OneOffQueryResult`), so one-off queries are sent
//     as a `ClientMessage.OneOffQuery` encoded by the SDK on the connection's own socket, and the answer is
//     taken from the tap.

import { importInternals, requireInstalled, sdkVersion } from './sdk_internal.mjs';
import { stepper, withTimeout } from './steps.mjs';

const V2 = 'v2.bsatn.spacetimedb';

requireInstalled(['ws']);

// ---- arguments ----------------------------------------------------------------------------------------------
function usage(msg) {
  process.stderr.write(`${msg}\nusage: node ts_chat.mjs <chat|reconnect|oneoff-unsubscribe> --uri ws://HOST:PORT ` +
    '[--db NAME] [--protocol v2|v3|default] [--compression gzip|none] [--step-timeout MS] [--deadline MS]\n');
  process.exit(2);
}
const argv = process.argv.slice(2);
const opts = { db: 'quickstart-chat', protocol: 'default', compression: 'gzip', stepTimeout: 5000, deadline: 30000 };
const scenarioName = argv.shift();
while (argv.length) {
  const key = argv.shift();
  const value = argv.shift();
  if (value === undefined) usage(`missing value for ${key}`);
  if (key === '--uri') opts.uri = value;
  else if (key === '--db') opts.db = value;
  else if (key === '--protocol') opts.protocol = value;
  else if (key === '--compression') opts.compression = value;
  else if (key === '--step-timeout') opts.stepTimeout = Number(value);
  else if (key === '--deadline') opts.deadline = Number(value);
  else usage(`unknown option ${key}`);
}
if (!opts.uri) usage('--uri is required');
if (!['v2', 'v3', 'default'].includes(opts.protocol)) usage(`bad --protocol ${opts.protocol}`);
if (!['gzip', 'none'].includes(opts.compression)) usage(`bad --compression ${opts.compression}`);

// ---- the SDK's log goes to stderr; warnings and errors are also reported in the JSON -----------------------
const sdkLog = [];
console.log = (...parts) => {
  const text = parts
    .filter(p => typeof p !== 'string' || !p.startsWith('color:'))
    .map(p => (typeof p === 'string' ? p : safeJson(p)))
    .join(' ')
    .replace(/%c/g, '');
  if (/\b(WARN|ERROR)\b/.test(text)) sdkLog.push(text.slice(0, 500));
  process.stderr.write(`[sdk] ${text}\n`);
};
console.error = (...parts) => {
  const text = parts.map(p => (typeof p === 'string' ? p : String(p))).join(' ');
  sdkLog.push(`console.error: ${text.slice(0, 500)}`);
  process.stderr.write(`[sdk] ${text}\n`);
};
function safeJson(v) {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  } catch {
    return String(v);
  }
}

// ---- WebSocket for Node 20: `ws`, subclassed to see the URL and the compression byte of every frame ---------
const { WebSocket: NodeWebSocket } = await import('ws');
/** Offered-protocols array (made per connection by ChatClient.wsFactory) -> the ChatClient it belongs to. */
const socketOwners = new WeakMap();
class RecordingWebSocket extends NodeWebSocket {
  constructor(url, protocols, options) {
    super(url, protocols, options);
    const rec = socketOwners.get(protocols);
    if (rec) {
      rec.wsUrl = String(url);
      rec.offeredProtocols = [...protocols];
      this.on('message', data => {
        const first = data instanceof ArrayBuffer ? new Uint8Array(data)[0] : data[0];
        rec.compressionTags.push(first);
      });
    }
  }
}
globalThis.WebSocket = RecordingWebSocket;

// ---- the SDK: public API for the clients, a bundle copy for the message types ------------------------------
const internal = await importInternals('.stdb_internal_chat.mjs', [
  'ClientMessage',
  'ServerMessage',
  'WebsocketDecompressAdapter',
]);
// the copy's classes are distinct from the package's: its messages are read and written with its own
// BinaryReader/BinaryWriter, rows (decoded with the package's deserializers) with the package's BinaryReader
const { ClientMessage, ServerMessage, WebsocketDecompressAdapter } = internal;
const { BinaryReader: InternalReader, BinaryWriter: InternalWriter } = internal;
const { AlgebraicType, BinaryReader, setGlobalLogLevel } = await import('spacetimedb');
const { DbConnection, Message, User } = await import('./chat_bindings.mjs');
const SDK_VERSION = sdkVersion();
setGlobalLogLevel('warn');

const ROW_DECODERS = {
  message: AlgebraicType.makeDeserializer(Message.algebraicType),
  user: AlgebraicType.makeDeserializer(User.algebraicType),
};

// ---- helpers --------------------------------------------------------------------------------------------------
const T0 = Date.now();
const elapsed = () => Date.now() - T0;

/** Long strings (the >1 KiB test message) are reported by length only. */
const brief = value =>
  JSON.parse(
    JSON.stringify(value, (_k, v) =>
      typeof v === 'bigint' ? v.toString() : typeof v === 'string' && v.length > 200 ? `<${v.length} chars>` : v
    )
  );

const hex = identity => (identity ? identity.toHexString() : null);

function rowJson(table, row) {
  if (table === 'user') {
    return { identity: hex(row.identity), name: row.name === undefined ? null : row.name, online: row.online };
  }
  if (table === 'message') {
    return {
      sender: hex(row.sender),
      sent: Number(row.sent.__timestamp_micros_since_unix_epoch__),
      text: row.text,
    };
  }
  return safeJson(row);
}

function rowCount(rowList) {
  const hint = rowList.sizeHint;
  if (hint.tag === 'FixedSize') return hint.value ? rowList.rowsData.length / hint.value : 0;
  return hint.value.length;
}

function decodeRows(table, rowList) {
  const decode = ROW_DECODERS[table];
  const reader = new BinaryReader(rowList.rowsData);
  const rows = [];
  while (reader.remaining > 0) rows.push(rowJson(table, decode(reader)));
  return rows;
}

/** A short, JSON-friendly description of one server message. */
function describeServer(msg) {
  const v = msg.value;
  switch (msg.tag) {
    case 'InitialConnection':
      return { tag: msg.tag, identity: hex(v.identity) };
    case 'SubscribeApplied':
      return {
        tag: msg.tag,
        requestId: v.requestId,
        querySetId: v.querySetId.id,
        tables: v.rows.tables.map(t => ({ table: t.table, rows: rowCount(t.rows) })),
      };
    case 'UnsubscribeApplied':
      return {
        tag: msg.tag,
        requestId: v.requestId,
        querySetId: v.querySetId.id,
        tables: v.rows ? v.rows.tables.map(t => ({ table: t.table, rows: rowCount(t.rows) })) : null,
      };
    case 'SubscriptionError':
      return { tag: msg.tag, requestId: v.requestId ?? null, querySetId: v.querySetId.id, error: v.error };
    case 'TransactionUpdate':
      return { tag: msg.tag, querySets: describeTx(v) };
    case 'ReducerResult': {
      const out = { tag: msg.tag, requestId: v.requestId, outcome: v.result.tag };
      if (v.result.tag === 'Ok') out.querySets = describeTx(v.result.value.transactionUpdate);
      return out;
    }
    case 'OneOffQueryResult':
      return { tag: msg.tag, requestId: v.requestId, result: 'ok' in v.result ? 'ok' : 'err' };
    default:
      return { tag: msg.tag };
  }
}

function describeTx(tx) {
  return tx.querySets.map(qs => ({
    querySetId: qs.querySetId.id,
    tables: qs.tables.map(t => ({
      table: t.tableName,
      rows: t.rows.map(r =>
        r.tag === 'PersistentTable'
          ? { inserts: rowCount(r.value.inserts), deletes: rowCount(r.value.deletes) }
          : { events: rowCount(r.value.events) }
      ),
    })),
  }));
}

function describeClient(msg) {
  const v = msg.value;
  switch (msg.tag) {
    case 'Subscribe':
      return { tag: msg.tag, requestId: v.requestId, querySetId: v.querySetId.id, queries: v.queryStrings };
    case 'Unsubscribe':
      return { tag: msg.tag, requestId: v.requestId, querySetId: v.querySetId.id, flags: v.flags.tag ?? v.flags };
    case 'CallReducer':
      return { tag: msg.tag, requestId: v.requestId, reducer: v.reducer };
    case 'OneOffQuery':
      return { tag: msg.tag, requestId: v.requestId, query: v.queryString };
    default:
      return { tag: msg.tag };
  }
}

// ---- one client -------------------------------------------------------------------------------------------
class ChatClient {
  constructor(name) {
    this.name = name;
    this.conn = null;
    this.identity = null;
    this.token = null;
    this.wsUrl = null;
    this.offeredProtocols = null;
    this.compressionTags = [];
    this.serverMessages = []; // describeServer() of every message received, in order
    this.clientMessages = []; // describeClient() of every message sent, in order
    this.tapErrors = [];
    this.events = []; // row callbacks, in order
    this.waiters = [];
    this.adapter = null;
    this.disconnected = null;
    this.closeCode = null;
    this.oneOffWaiters = new Map();
    this.nextOneOffId = 0x7fff0000; // far from the SDK's own request ids
  }

  get protocol() {
    return this.adapter ? this.adapter.protocol : null;
  }

  /** The `withWSFn` factory: the SDK's own socket adapter, tapped. */
  wsFactory(protocolMode) {
    return async args => {
      const protocols = protocolMode === 'v2' ? [V2] : [...args.wsProtocol];
      socketOwners.set(protocols, this);
      const inner = await WebsocketDecompressAdapter.openWebSocket({ ...args, wsProtocol: protocols });
      this.adapter = inner;
      const rec = this;
      return {
        get protocol() {
          return inner.protocol;
        },
        get readyState() {
          return inner.readyState;
        },
        send(bytes) {
          rec.#tapClient(bytes);
          inner.send(bytes);
        },
        close() {
          inner.close();
        },
        set onclose(handler) {
          inner.onclose = ev => {
            rec.closeCode = ev && ev.code !== undefined ? ev.code : null;
            handler(ev);
          };
        },
        set onopen(handler) {
          inner.onopen = handler;
        },
        set onerror(handler) {
          inner.onerror = handler;
        },
        set onmessage(handler) {
          inner.onmessage = msg => {
            rec.#tapServer(msg.data);
            handler(msg);
          };
        },
      };
    };
  }

  #messages(bytes, type) {
    const reader = new InternalReader(bytes);
    const out = [type.deserialize(reader)];
    if (this.protocol === V2) {
      if (reader.remaining !== 0) throw new Error(`${reader.remaining} trailing bytes after a v2 message`);
      return out;
    }
    while (reader.remaining > 0) out.push(type.deserialize(reader));
    return out;
  }

  #tapServer(bytes) {
    try {
      for (const msg of this.#messages(bytes, ServerMessage)) {
        this.serverMessages.push(describeServer(msg));
        if (msg.tag === 'OneOffQueryResult') {
          const waiter = this.oneOffWaiters.get(msg.value.requestId);
          if (waiter) {
            this.oneOffWaiters.delete(msg.value.requestId);
            waiter(msg.value.result);
          }
        }
      }
    } catch (e) {
      this.tapErrors.push(`server frame: ${e.message}`);
    }
  }

  #tapClient(bytes) {
    try {
      for (const msg of this.#messages(bytes, ClientMessage)) this.clientMessages.push(describeClient(msg));
    } catch (e) {
      this.tapErrors.push(`client frame: ${e.message}`);
    }
  }

  #record(event) {
    event.at = this.events.length;
    this.events.push(event);
    for (const w of [...this.waiters]) {
      if (w.pred(event)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  }

  #onRow(table, op) {
    return (ctx, a, b) => {
      const ev = ctx.event || {};
      const event = { table, op, event: ev.tag ?? null };
      if (ev.tag === 'Reducer') {
        event.reducer = ev.value.reducer.name;
        event.args = safeJson(ev.value.reducer.args);
        event.timestamp = Number(ev.value.timestamp.__timestamp_micros_since_unix_epoch__);
      }
      if (op === 'update') {
        event.old = rowJson(table, a);
        event.new = rowJson(table, b);
      } else {
        event.row = rowJson(table, a);
      }
      this.#record(event);
    };
  }

  /** Build and connect; resolves with {identity, token} once onConnect fired. */
  connect({ token, protocolMode = opts.protocol, compression = opts.compression } = {}) {
    return new Promise((resolve, reject) => {
      let builder = DbConnection.builder()
        .withUri(opts.uri)
        .withDatabaseName(opts.db)
        .withCompression(compression)
        .withWSFn(this.wsFactory(protocolMode))
        .onConnect((_conn, identity, tok) => {
          this.identity = hex(identity);
          this.token = tok;
          resolve({ identity: this.identity, token: tok });
        })
        .onConnectError((_ctx, error) => reject(new Error(`connect error: ${error && error.message}`)))
        .onDisconnect((_ctx, error) => {
          this.disconnected = { error: error ? String(error.message || error) : null };
          for (const w of [...this.waiters]) {
            if (w.pred({ op: 'disconnected' })) {
              this.waiters.splice(this.waiters.indexOf(w), 1);
              w.resolve(this.disconnected);
            }
          }
        });
      if (token !== undefined) builder = builder.withToken(token);
      this.conn = builder.build();
      for (const table of ['user', 'message']) {
        this.conn.db[table].onInsert(this.#onRow(table, 'insert'));
        this.conn.db[table].onDelete(this.#onRow(table, 'delete'));
      }
      this.conn.db.user.onUpdate(this.#onRow('user', 'update'));
    });
  }

  /** Resolves with the first event (recorded at index >= `from`) that matches. */
  waitEvent(pred, what, from = 0, ms = opts.stepTimeout) {
    const found = this.events.slice(from).find(pred);
    if (found) return Promise.resolve(found);
    return withTimeout(
      new Promise(resolve => this.waiters.push({ pred: e => e.at >= from && pred(e), resolve })),
      ms,
      `${this.name}: ${what}`
    );
  }

  /** Subscribe; resolves with the handle once applied (rejects on a subscription error). */
  subscribe(queries, ms = opts.stepTimeout) {
    let handle;
    const applied = new Promise((resolve, reject) => {
      handle = this.conn
        .subscriptionBuilder()
        .onApplied(() => resolve(handle))
        .onError((_ctx, error) => reject(new Error(`subscription error: ${error && error.message}`)))
        .subscribe(queries);
    });
    return withTimeout(applied, ms, `${this.name}: SubscribeApplied for ${JSON.stringify(queries)}`);
  }

  /** Call a reducer by accessor name; resolves with {ok, error?, errorClass?}. */
  async call(accessor, args, ms = opts.stepTimeout) {
    const t = Date.now();
    try {
      await withTimeout(this.conn.reducers[accessor](args), ms, `${this.name}: result of ${accessor}`);
      return { reducer: accessor, args: brief(args), ok: true, ms: Date.now() - t };
    } catch (e) {
      if (/^timed out/.test(e.message)) throw e;
      return { reducer: accessor, args: brief(args), ok: false, error: e.message, errorClass: e.constructor.name };
    }
  }

  /** A one-off query sent as the SDK's own ClientMessage on this connection's socket. */
  oneOff(query, ms = opts.stepTimeout) {
    const requestId = this.nextOneOffId++;
    const writer = new InternalWriter(64);
    ClientMessage.serialize(writer, ClientMessage.OneOffQuery({ requestId, queryString: query }));
    const answer = new Promise(resolve => this.oneOffWaiters.set(requestId, resolve));
    // `ws` is a TS-private field of DbConnectionImpl: the (tapped) adapter our factory returned
    this.conn.ws.send(writer.getBuffer());
    return withTimeout(answer, ms, `${this.name}: OneOffQueryResult for ${JSON.stringify(query)}`).then(result =>
      'ok' in result
        ? {
            query,
            ok: true,
            tables: result.ok.tables.map(t => ({ table: t.table, rows: decodeRows(t.table, t.rows) })),
          }
        : { query, ok: false, error: result.err }
    );
  }

  disconnect(ms = opts.stepTimeout) {
    if (this.disconnected) return Promise.resolve(this.disconnected);
    const done = new Promise(resolve => this.waiters.push({ pred: e => e.op === 'disconnected', resolve }));
    this.conn.disconnect();
    return withTimeout(done, ms, `${this.name}: onDisconnect`);
  }

  cache(table) {
    return [...this.conn.db[table].iter()].map(r => rowJson(table, r));
  }

  report() {
    const url = this.wsUrl ? new URL(this.wsUrl) : null;
    return {
      identity: this.identity,
      has_token: typeof this.token === 'string' && this.token.length > 0,
      protocol: this.protocol,
      offered_protocols: this.offeredProtocols,
      ws_path: url ? url.pathname : null,
      ws_query: url ? Object.fromEntries([...url.searchParams.keys()].map(k => [k, k === 'token' ? '<token>' : url.searchParams.get(k)])) : null,
      compression_tags: [...new Set(this.compressionTags)].sort(),
      server_messages: this.serverMessages,
      client_messages: this.clientMessages,
      tap_errors: this.tapErrors,
      events: brief(this.events),
      disconnected: this.disconnected,
      close_code: this.closeCode,
    };
  }
}

// ---- scenarios --------------------------------------------------------------------------------------------
const out = { scenario: scenarioName, sdk_version: SDK_VERSION, options: { ...opts }, ok: false, failed: null, steps: [] };
const clients = [];

function newClient(name) {
  const c = new ChatClient(name);
  clients.push(c);
  return c;
}

const step = stepper(out, elapsed);

const isUser = (identity, pred = () => true) => e => e.table === 'user' && (e.row?.identity === identity || e.new?.identity === identity) && pred(e);

async function chat() {
  const a = newClient('A');
  const b = newClient('B');
  const calls = (out.calls = {});
  const seen = (out.seen = {});

  await step('A connects', () => withTimeout(a.connect(), opts.stepTimeout, 'A: onConnect'));
  await step('A subscribes', () => a.subscribe(['SELECT * FROM user', 'SELECT * FROM message']));
  out.a_cache_after_subscribe = a.cache('user');
  await step('B connects', () => withTimeout(b.connect(), opts.stepTimeout, 'B: onConnect'));
  seen.a_sees_b_insert = await step('A sees B come online', () =>
    a.waitEvent(isUser(b.identity, e => e.op === 'insert'), "B's user row inserted")
  );
  await step('B subscribes', () => b.subscribe(['SELECT * FROM user', 'SELECT * FROM message']));
  out.b_cache_after_subscribe = b.cache('user');

  let mark = b.events.length;
  calls.a_set_name = await step('A sets its name', () => a.call('setName', { name: 'alice' }));
  seen.a_own_name = await step('A sees its own rename', () =>
    a.waitEvent(isUser(a.identity, e => e.op === 'update' && e.new.name === 'alice'), 'own rename to alice')
  );
  seen.b_sees_a_name = await step('B sees A renamed', () =>
    b.waitEvent(isUser(a.identity, e => e.op === 'update'), "A's user row updated", mark)
  );

  mark = a.events.length;
  calls.b_set_name = await step('B sets its name', () => b.call('setName', { name: 'bob' }));
  seen.a_sees_b_name = await step('A sees B renamed', () =>
    a.waitEvent(isUser(b.identity, e => e.op === 'update'), "B's user row updated", mark)
  );

  calls.a_empty_name = await step('A sets an empty name', () => a.call('setName', { name: '' }));
  calls.b_empty_message = await step('B sends an empty message', () => b.call('sendMessage', { text: '' }));

  mark = b.events.length;
  calls.a_message = await step('A sends a message', () => a.call('sendMessage', { text: 'hello from alice' }));
  seen.a_own_message = await step('A sees its own message', () =>
    a.waitEvent(e => e.table === 'message' && e.op === 'insert' && e.row.text === 'hello from alice', 'own message')
  );
  seen.b_sees_a_message = await step("B sees A's message", () =>
    b.waitEvent(e => e.table === 'message' && e.op === 'insert' && e.row.sender === a.identity, "A's message", mark)
  );

  mark = a.events.length;
  const long = 'bob says: ' + 'lorem ipsum dolor sit amet '.repeat(150); // > 1 KiB: compressed by the server
  out.long_text_length = long.length;
  calls.b_message = await step('B sends a message', () => b.call('sendMessage', { text: 'hi from bob' }));
  calls.b_long_message = await step('B sends a long message', () => b.call('sendMessage', { text: long }));
  seen.a_sees_b_message = await step("A sees B's message", () =>
    a.waitEvent(e => e.table === 'message' && e.op === 'insert' && e.row.text === 'hi from bob', "B's message", mark)
  );
  seen.a_sees_b_long_message = await step("A sees B's long message", () =>
    a.waitEvent(e => e.table === 'message' && e.op === 'insert' && e.row.text.length > 1000, "B's long message", mark)
  );
  out.a_got_long_message_intact = seen.a_sees_b_long_message.row.text === long;

  out.a_messages = brief(a.cache('message'));
  out.b_messages = brief(b.cache('message'));
  out.a_users = a.cache('user');
  out.b_users = b.cache('user');

  mark = a.events.length;
  out.b_disconnect = await step('B disconnects', () => b.disconnect());
  seen.a_sees_b_offline = await step('A sees B go offline', () =>
    a.waitEvent(isUser(b.identity, e => e.op === 'update' && e.new.online === false), 'B offline', mark)
  );
  out.a_users_after_b_left = a.cache('user');
  out.a_disconnect = await step('A disconnects', () => a.disconnect());
}

async function reconnect() {
  const observer = newClient('O');
  const first = newClient('A1');
  const again = newClient('A2');
  const other = newClient('C');
  const bad = newClient('X');
  const seen = (out.seen = {});

  await step('O connects', () => withTimeout(observer.connect(), opts.stepTimeout, 'O: onConnect'));
  await step('O subscribes', () => observer.subscribe(['SELECT * FROM user']));

  const creds = await step('A1 connects without a token', () =>
    withTimeout(first.connect(), opts.stepTimeout, 'A1: onConnect')
  );
  out.saved_token_length = creds.token.length;
  await step('A1 subscribes', () => first.subscribe(['SELECT * FROM user']));
  out.a1_set_name = await step('A1 sets its name', () => first.call('setName', { name: 'carol' }));
  seen.o_sees_a1_name = await step('O sees A1 renamed', () =>
    observer.waitEvent(isUser(first.identity, e => e.op === 'update' && e.new.name === 'carol'), 'A1 renamed')
  );

  let mark = observer.events.length;
  await step('A1 disconnects', () => first.disconnect());
  seen.o_sees_a1_offline = await step('O sees A1 go offline', () =>
    observer.waitEvent(isUser(first.identity, e => e.op === 'update' && e.new.online === false), 'A1 offline', mark)
  );

  mark = observer.events.length;
  const back = await step('A2 connects with the saved token', () =>
    withTimeout(again.connect({ token: creds.token }), opts.stepTimeout, 'A2: onConnect')
  );
  out.a2_token_is_saved_token = back.token === creds.token;
  out.same_identity = back.identity === creds.identity;
  out.ws_token_differs_from_saved = again.wsUrl !== null && new URL(again.wsUrl).searchParams.get('token') !== creds.token;
  seen.o_sees_a2_online = await step('O sees A come back online', () =>
    observer.waitEvent(isUser(creds.identity, e => e.op === 'update' && e.new.online === true), 'A back online', mark)
  );
  await step('A2 subscribes', () => again.subscribe(['SELECT * FROM user']));
  out.a2_own_row = again.cache('user').find(u => u.identity === creds.identity) ?? null;
  out.a2_set_name = await step('A2 sets its name', () => again.call('setName', { name: 'carol2' }));
  seen.o_sees_a2_name = await step('O sees A2 renamed', () =>
    observer.waitEvent(isUser(creds.identity, e => e.op === 'update' && e.new.name === 'carol2'), 'A2 renamed')
  );

  const anon = await step('C connects without a token', () =>
    withTimeout(other.connect(), opts.stepTimeout, 'C: onConnect')
  );
  out.anonymous_identity_differs = anon.identity !== creds.identity;
  await step('C disconnects', () => other.disconnect());

  out.bad_token = await step('X connects with a bad token', async () => {
    try {
      await withTimeout(bad.connect({ token: 'not-a-token' }), opts.stepTimeout, 'X: onConnect or onConnectError');
      return { connected: true };
    } catch (e) {
      if (/^timed out/.test(e.message)) throw e;
      return { connected: false, error: e.message };
    }
  });

  mark = observer.events.length;
  await step('A2 disconnects', () => again.disconnect());
  seen.o_sees_a2_offline = await step('O sees A2 go offline', () =>
    observer.waitEvent(isUser(creds.identity, e => e.op === 'update' && e.new.online === false), 'A2 offline', mark)
  );
  await step('O disconnects', () => observer.disconnect());
}

async function oneoffUnsubscribe() {
  const a = newClient('A');
  const b = newClient('B');
  const seen = (out.seen = {});
  const oneOff = (out.one_off = {});

  await step('A connects', () => withTimeout(a.connect(), opts.stepTimeout, 'A: onConnect'));
  const messages = await step('A subscribes to messages', () => a.subscribe(['SELECT * FROM message']));
  const users = await step('A subscribes to users', () => a.subscribe(['SELECT * FROM user']));
  await step('B connects', () => withTimeout(b.connect(), opts.stepTimeout, 'B: onConnect'));
  await step('A sees B', () => a.waitEvent(isUser(b.identity, e => e.op === 'insert'), "B's user row"));

  await step('A sends a message', () => a.call('sendMessage', { text: 'first' }));
  await step('B sends a message', () => b.call('sendMessage', { text: 'second' }));
  await step("A sees B's message", () =>
    a.waitEvent(e => e.table === 'message' && e.op === 'insert' && e.row.text === 'second', "B's message")
  );

  oneOff.messages = await step('one-off: messages', () => a.oneOff('SELECT * FROM message'));
  oneOff.users = await step('one-off: users', () => a.oneOff('SELECT * FROM user'));
  oneOff.filtered = await step('one-off: filtered', () =>
    a.oneOff(`SELECT * FROM message WHERE text = 'second'`)
  );
  oneOff.quoted = await step('one-off: quoted table name', () =>
    a.oneOff('SELECT * FROM "user" WHERE online = true')
  );
  oneOff.bad = await step('one-off: bad query', () => a.oneOff('SELECT * FROM no_such_table'));

  // unsubscribeThen(): the end callback fires, the dropped rows leave the cache (onDelete)
  let mark = a.events.length;
  const serverMark = a.serverMessages.length;
  out.messages_active_before = messages.isActive();
  const ended = new Promise(resolve => messages.unsubscribeThen(() => resolve(true)));
  out.messages_unsubscribe_then_called = await step('A unsubscribes from messages', () =>
    withTimeout(ended, opts.stepTimeout, 'A: unsubscribeThen callback')
  );
  out.messages_ended = messages.isEnded();
  out.messages_active_after = messages.isActive();
  out.messages_deleted_on_unsubscribe = a.events.slice(mark).filter(e => e.table === 'message' && e.op === 'delete');
  out.message_cache_after_unsubscribe = a.cache('message');

  mark = a.events.length;
  out.after_unsubscribe_calls = [
    await step('A sends a message after unsubscribing', () => a.call('sendMessage', { text: 'third' })),
    await step('B sends a message after A unsubscribed', () => b.call('sendMessage', { text: 'fourth' })),
    await step('B renames', () => b.call('setName', { name: 'dave' })),
  ];
  // B's rename reaches A (still subscribed to users) after B's message would have: nothing more can come
  seen.a_sees_b_rename = await step("A sees B's rename", () =>
    a.waitEvent(isUser(b.identity, e => e.op === 'update' && e.new.name === 'dave'), "B's rename", mark)
  );
  out.message_events_after_unsubscribe = a.events.slice(mark).filter(e => e.table === 'message');
  out.message_cache_later = a.cache('message');
  out.server_messages_after_unsubscribe = a.serverMessages.slice(serverMark);

  // unsubscribe(): no callback; the handle ends once UnsubscribeApplied is in
  mark = a.events.length;
  await step('A unsubscribes from users', async () => {
    users.unsubscribe();
    const t = Date.now();
    while (!users.isEnded()) {
      if (Date.now() - t > opts.stepTimeout) throw new Error('timed out waiting for the user subscription to end');
      await new Promise(resolve => setTimeout(resolve, 10));
    }
  });
  out.users_active_after = users.isActive();
  out.users_deleted_on_unsubscribe = a.events.slice(mark).filter(e => e.table === 'user' && e.op === 'delete');
  out.user_cache_after_unsubscribe = a.cache('user');

  mark = a.events.length;
  await step('B renames again', () => b.call('setName', { name: 'dave2' }));
  // a one-off from A is answered after any update the rename could have caused for A
  oneOff.users_later = await step('one-off: users later', () => a.oneOff('SELECT * FROM user'));
  out.events_after_all_unsubscribed = a.events.slice(mark);
  out.one_off_still_works_with_no_subscription = oneOff.users_later.ok;

  await step('B disconnects', () => b.disconnect());
  await step('A disconnects', () => a.disconnect());
}

const SCENARIOS = { chat, reconnect, 'oneoff-unsubscribe': oneoffUnsubscribe };
const scenario = SCENARIOS[scenarioName];
if (!scenario) usage(`unknown scenario ${scenarioName}`);

let printed = false;
function finish(code) {
  if (printed) return;
  printed = true;
  out.clients = Object.fromEntries(clients.map(c => [c.name, c.report()]));
  out.sdk_log = sdkLog;
  out.elapsed_ms = elapsed();
  process.stdout.write(JSON.stringify(brief(out)) + '\n', () =>
    process.exit(code)
  );
}

// a hard stop, so that a hang never outlives the caller's timeout
const watchdog = setTimeout(() => {
  out.failed = out.failed ?? { step: 'watchdog', error: 'the scenario did not finish in time', at_ms: elapsed() };
  finish(1);
}, opts.deadline);
watchdog.unref();

try {
  await scenario();
  out.ok = true;
} catch (e) {
  if (!out.failed) out.failed = { step: '(outside a step)', error: String(e && e.stack ? e.stack : e), at_ms: elapsed() };
} finally {
  for (const c of clients) {
    if (c.conn && !c.disconnected) {
      try {
        c.conn.disconnect();
      } catch {
        // ignore
      }
    }
  }
}
finish(out.ok ? 0 : 1);
