// What the chat scripts for both SDK generations share (ts_chat.mjs for spacetimedb 2.x, ts_chat_v1.mjs for
// 1.x): the command line, the SDK's log, the recording WebSocket, the JSON forms of rows and events, the
// part of a chat client that does not depend on the protocol (row and reducer callbacks, waiting for them,
// subscriptions, the tapped socket, one-off queries sent behind the SDK's back) and the run of a scenario
// with its report. The scenarios themselves are in chat_scenarios.mjs.

import { stepper, withTimeout } from './steps.mjs';

export const SCENARIO_NAMES = ['chat', 'reconnect', 'oneoff-unsubscribe'];

// ---- arguments ----------------------------------------------------------------------------------------------
/**
 * `{scenario, opts}` from the command line: `<scenario> --uri ws://HOST:PORT [--db NAME] [--step-timeout MS]
 * [--deadline MS]` and one `--<name> VALUE` per entry of `choices` (name -> allowed values, the first the
 * default). Exits with code 2 on bad usage.
 */
export function parseOptions(script, choices) {
  const extra = Object.entries(choices).map(([name, values]) => ` [--${name} ${values.join('|')}]`);
  const usage = msg => {
    process.stderr.write(
      `${msg}\nusage: node ${script} <${SCENARIO_NAMES.join('|')}> --uri ws://HOST:PORT [--db NAME]` +
        `${extra.join('')} [--step-timeout MS] [--deadline MS]\n`
    );
    process.exit(2);
  };
  const argv = process.argv.slice(2);
  const scenario = argv.shift();
  const opts = { db: 'quickstart-chat', stepTimeout: 5000, deadline: 30000 };
  for (const [name, values] of Object.entries(choices)) opts[name] = values[0];
  while (argv.length) {
    const key = argv.shift();
    const value = argv.shift();
    if (value === undefined) usage(`missing value for ${key}`);
    const name = key.replace(/^--/, '');
    if (name in choices) {
      if (!choices[name].includes(value)) usage(`bad ${key} ${value}`);
      opts[name] = value;
    } else if (name === 'uri' || name === 'db') opts[name] = value;
    else if (name === 'step-timeout') opts.stepTimeout = Number(value);
    else if (name === 'deadline') opts.deadline = Number(value);
    else usage(`unknown option ${key}`);
  }
  if (!opts.uri) usage('--uri is required');
  if (!SCENARIO_NAMES.includes(scenario)) usage(`unknown scenario ${scenario}`);
  return { scenario, opts };
}

// ---- JSON forms -----------------------------------------------------------------------------------------------
export function safeJson(v) {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  } catch {
    return String(v);
  }
}

/** A JSON-friendly copy; long strings (the >1 KiB test message) are reported by length only. */
export const brief = value =>
  JSON.parse(
    JSON.stringify(value, (_k, v) =>
      typeof v === 'bigint' ? v.toString() : typeof v === 'string' && v.length > 200 ? `<${v.length} chars>` : v
    )
  );

/** The hex of an Identity or ConnectionId (null for none). */
export const hex = id => (id ? id.toHexString() : null);

/** The hex of some bytes. */
export const bytesHex = bytes => Buffer.from(bytes).toString('hex');

export function rowJson(table, row) {
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

/** The number of rows in a BsatnRowList (the same type in v1 and v2). */
export function rowCount(rowList) {
  const hint = rowList.sizeHint;
  if (hint.tag === 'FixedSize') return hint.value ? rowList.rowsData.length / hint.value : 0;
  return hint.value.length;
}

// ---- the SDK's log goes to stderr; warnings, errors and debug output are also reported in the JSON ---------
/** Route the SDK's console output to stderr; returns the list its WARN / ERROR lines are collected in. */
export function captureSdkLog() {
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
  for (const level of ['error', 'warn', 'debug']) {
    console[level] = (...parts) => {
      const text = parts.map(p => (typeof p === 'string' ? p : String(p))).join(' ');
      sdkLog.push(`console.${level}: ${text.slice(0, 500)}`);
      process.stderr.write(`[sdk] ${text}\n`);
    };
  }
  return sdkLog;
}

// ---- WebSocket for Node 20: `ws`, subclassed to see the URL, the subprotocol and every frame's first byte ----
/** Offered-protocols array (made per connection by ChatClientBase.wsFactory) -> the client it belongs to. */
const socketOwners = new WeakMap();

/** Make `globalThis.WebSocket` the recording subclass of `ws`'s WebSocket. */
export async function installRecordingWebSocket() {
  const { WebSocket: NodeWebSocket } = await import('ws');
  class RecordingWebSocket extends NodeWebSocket {
    constructor(url, protocols, options) {
      super(url, protocols, options);
      const rec = socketOwners.get(protocols);
      if (rec) {
        rec.socket = this;
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
}

// ---- one client -------------------------------------------------------------------------------------------
/**
 * A chat client on a real DbConnection, recording its row callbacks (`events`), its reducer callbacks
 * (`reducerEvents`, where the SDK has them) and every message on its socket, decoded with the SDK's own
 * message types. A subclass for each SDK generation provides:
 *   connection(options)       {builder, openSocket, protocols}: `DbConnection.builder()` with the database
 *                             set, the SDK's own socket factory, and the subprotocols to offer (from the
 *                             SDK's): see wsFactory(); `options` are those of connect() but the token
 *   decodeFrame(bytes, side)  the messages of one frame ('server' or 'client'), with the SDK's types
 *   serverFields, clientFields   tag -> (value => the fields of the JSON form of a message with that tag)
 *   oneOffAnswer(msg)         for an answer to oneOff(): {key, ok, error, tables: [{table, rows: RowList}]}
 *   encodeOneOff(query, n)    {key, bytes} of the n-th one-off query
 *   rowReader(bytes)          a BinaryReader (of the SDK's package) over rows' bytes
 *   decodeRow(table, reader)  one row of a table, read from it
 *   call(accessor, args)      call a reducer; resolves with {reducer, args, ok, ...}
 * and sets `deliverOneOffAnswers` (whether the SDK gets to see them) and `seesOthersCalls` (whether
 * reducer callbacks fire for other clients' calls).
 */
export class ChatClientBase {
  deliverOneOffAnswers = true;
  seesOthersCalls = false;

  constructor(name, opts) {
    this.name = name;
    this.opts = opts;
    this.conn = null;
    this.identity = null;
    this.token = null;
    this.socket = null; // the RecordingWebSocket
    this.adapter = null; // the tapped adapter the SDK talks to
    this.wsUrl = null;
    this.offeredProtocols = null;
    this.compressionTags = [];
    this.serverMessages = []; // the JSON form of every message received, in order
    this.clientMessages = []; // the JSON form of every message sent, in order
    this.tapErrors = [];
    this.events = []; // row callbacks, in order
    this.reducerEvents = []; // reducer callbacks, in order
    this.waiters = [];
    this.disconnected = null;
    this.disconnectWaiters = [];
    this.closeCode = null;
    this.oneOffWaiters = new Map();
    this.oneOffCount = 0;
  }

  /** The negotiated subprotocol. */
  get protocol() {
    return this.socket ? this.socket.protocol : null;
  }

  /** The DbConnectionBuilder for connect(), with its URI, compression and tapped socket. */
  builder({ compression = this.opts.compression, ...options }) {
    const { builder, openSocket, protocols } = this.connection(options);
    return builder
      .withUri(this.opts.uri)
      .withCompression(compression)
      .withWSFn(this.wsFactory(openSocket, protocols));
  }

  /**
   * A `withWSFn` factory: `open` (the SDK's own socket factory) called with the subprotocols
   * `protocols(args.wsProtocol)` (a new array, which names this client to the RecordingWebSocket), its
   * adapter returned tapped.
   */
  wsFactory(open, protocols) {
    return async args => {
      const offered = protocols(args.wsProtocol);
      socketOwners.set(offered, this);
      const inner = await open({ ...args, wsProtocol: offered });
      this.adapter = this.#tapped(inner);
      return this.adapter;
    };
  }

  #tapped(inner) {
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
          if (rec.#tapServer(msg.data)) handler(msg);
        };
      },
    };
  }

  /** Record a server frame; false when it only answered our own one-off query and the SDK must not see it. */
  #tapServer(bytes) {
    let deliver = true;
    try {
      for (const msg of this.decodeFrame(bytes, 'server')) {
        this.serverMessages.push(this.#describe(this.serverFields, msg));
        const answer = this.oneOffAnswer(msg);
        const waiter = answer && this.oneOffWaiters.get(answer.key);
        if (waiter) {
          this.oneOffWaiters.delete(answer.key);
          waiter(answer);
          deliver = this.deliverOneOffAnswers;
        }
      }
    } catch (e) {
      this.tapErrors.push(`server frame: ${e.message}`);
    }
    return deliver;
  }

  /** A short, JSON-friendly description of one message: its tag, and its fields per `fields[tag]`. */
  #describe(fields, msg) {
    const describe = fields[msg.tag];
    return { tag: msg.tag, ...(describe ? describe(msg.value) : {}) };
  }

  #tapClient(bytes) {
    try {
      for (const msg of this.decodeFrame(bytes, 'client')) {
        this.clientMessages.push(this.#describe(this.clientFields, msg));
      }
    } catch (e) {
      this.tapErrors.push(`client frame: ${e.message}`);
    }
  }

  // ---- callbacks and waiting for them ----
  #record(list, event) {
    event.at = list.length;
    list.push(event);
    for (const w of [...this.waiters]) {
      if (w.list === list && w.pred(event)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  }

  /** Resolves with the first entry of `list` (at index >= `from`) that matches. */
  #waitIn(list, pred, what, from, ms) {
    const found = list.slice(from).find(pred);
    if (found) return Promise.resolve(found);
    return withTimeout(
      new Promise(resolve => this.waiters.push({ list, pred: e => e.at >= from && pred(e), resolve })),
      ms,
      `${this.name}: ${what}`
    );
  }

  /** Resolves with the first row callback (recorded at index >= `from`) that matches. */
  waitEvent(pred, what, from = 0, ms = this.opts.stepTimeout) {
    return this.#waitIn(this.events, pred, what, from, ms);
  }

  /** Resolves with the first reducer callback (recorded at index >= `from`) that matches. */
  waitReducerEvent(pred, what, from = 0, ms = this.opts.stepTimeout) {
    return this.#waitIn(this.reducerEvents, pred, what, from, ms);
  }

  /** The JSON form of a `ctx.event` (the caller is there only where the SDK reports it: 1.x). */
  describeEvent(ev) {
    const event = { event: ev.tag ?? null };
    if (ev.tag === 'Reducer') {
      event.reducer = ev.value.reducer.name;
      event.args = safeJson(ev.value.reducer.args);
      event.timestamp = Number(ev.value.timestamp.__timestamp_micros_since_unix_epoch__);
      if (ev.value.callerIdentity) event.caller = hex(ev.value.callerIdentity);
    }
    return event;
  }

  #onRow(table, op) {
    return (ctx, a, b) => {
      const event = { table, op, ...this.describeEvent(ctx.event || {}) };
      if (op === 'update') {
        event.old = rowJson(table, a);
        event.new = rowJson(table, b);
      } else {
        event.row = rowJson(table, a);
      }
      this.#record(this.events, event);
    };
  }

  /** Record a reducer callback (`event`: its JSON form). */
  recordReducerEvent(event) {
    this.#record(this.reducerEvents, event);
  }

  // ---- the connection ----
  /** Build and connect; resolves with {identity, token} once onConnect fired. */
  connect({ token, ...options } = {}) {
    return new Promise((resolve, reject) => {
      let builder = this.builder(options)
        .onConnect((_conn, identity, tok) => {
          this.identity = hex(identity);
          this.token = tok;
          resolve({ identity: this.identity, token: tok });
        })
        .onConnectError((_ctx, error) => reject(new Error(`connect error: ${error && error.message}`)))
        .onDisconnect((_ctx, error) => {
          this.disconnected = { error: error ? String(error.message || error) : null };
          for (const resolveWaiter of this.disconnectWaiters.splice(0)) resolveWaiter(this.disconnected);
        });
      if (token !== undefined) builder = builder.withToken(token);
      this.conn = builder.build();
      for (const table of ['user', 'message']) {
        this.conn.db[table].onInsert(this.#onRow(table, 'insert'));
        this.conn.db[table].onDelete(this.#onRow(table, 'delete'));
      }
      this.conn.db.user.onUpdate(this.#onRow('user', 'update'));
      this.connected(this.conn);
    });
  }

  /** Called once the connection is built (for more callbacks). */
  connected(_conn) {}

  /** Subscribe; resolves with the handle once applied (rejects on a subscription error). */
  subscribe(queries, ms = this.opts.stepTimeout) {
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

  /** A one-off query sent as the SDK's own ClientMessage on this connection's socket. */
  oneOff(query, ms = this.opts.stepTimeout) {
    const { key, bytes } = this.encodeOneOff(query, this.oneOffCount++);
    const answer = new Promise(resolve => this.oneOffWaiters.set(key, resolve));
    this.adapter.send(bytes);
    return withTimeout(answer, ms, `${this.name}: the answer to the one-off query ${JSON.stringify(query)}`).then(
      ({ ok, error, tables }) =>
        ok
          ? { query, ok, tables: tables.map(t => ({ table: t.table, rows: this.#decodeRows(t.table, t.rows) })) }
          : { query, ok, error }
    );
  }

  #decodeRows(table, rowList) {
    const reader = this.rowReader(rowList.rowsData);
    const rows = [];
    while (reader.remaining > 0) rows.push(rowJson(table, this.decodeRow(table, reader)));
    return rows;
  }

  disconnect(ms = this.opts.stepTimeout) {
    if (this.disconnected) return Promise.resolve(this.disconnected);
    const done = new Promise(resolve => this.disconnectWaiters.push(resolve));
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
      connection_id: this.conn && this.identity ? hex(this.conn.connectionId) : null,
      has_token: typeof this.token === 'string' && this.token.length > 0,
      protocol: this.protocol,
      offered_protocols: this.offeredProtocols,
      ws_path: url ? url.pathname : null,
      ws_query: url
        ? Object.fromEntries(
            [...url.searchParams.keys()].map(k => [k, k === 'token' ? '<token>' : url.searchParams.get(k)])
          )
        : null,
      compression_tags: [...new Set(this.compressionTags)].sort(),
      server_messages: this.serverMessages,
      client_messages: this.clientMessages,
      tap_errors: this.tapErrors,
      events: brief(this.events),
      reducer_events: brief(this.reducerEvents),
      disconnected: this.disconnected,
      close_code: this.closeCode,
    };
  }
}

// ---- a run of one scenario ----------------------------------------------------------------------------------
/**
 * Run `scenarios[scenario]` with `{out, step, newClient, opts}` and print the report: one JSON object on
 * stdout, `{scenario, sdk_version, ok, failed: {step, error} | null, steps, clients, sdk_log, ...}`. Exits with
 * 0 when every step completed, 1 when a step failed or timed out (the JSON is still printed). A watchdog ends
 * the run after `opts.deadline` ms. `makeClient(name)` makes a client.
 */
export async function runScenario({ scenarios, scenario, opts, sdkVersion, sdkLog, makeClient }) {
  const t0 = Date.now();
  const elapsed = () => Date.now() - t0;
  const out = { scenario, sdk_version: sdkVersion, options: { ...opts }, ok: false, failed: null, steps: [] };
  const clients = [];
  const newClient = name => {
    const c = makeClient(name);
    clients.push(c);
    return c;
  };

  let printed = false;
  const finish = code => {
    if (printed) return;
    printed = true;
    out.clients = Object.fromEntries(clients.map(c => [c.name, c.report()]));
    out.sdk_log = sdkLog;
    out.elapsed_ms = elapsed();
    process.stdout.write(JSON.stringify(brief(out)) + '\n', () => process.exit(code));
  };

  // a hard stop, so that a hang never outlives the caller's timeout
  const watchdog = setTimeout(() => {
    out.failed = out.failed ?? { step: 'watchdog', error: 'the scenario did not finish in time', at_ms: elapsed() };
    finish(1);
  }, opts.deadline);
  watchdog.unref();

  try {
    await scenarios[scenario]({ out, step: stepper(out, elapsed), newClient, opts });
    out.ok = true;
  } catch (e) {
    if (!out.failed) {
      out.failed = { step: '(outside a step)', error: String(e && e.stack ? e.stack : e), at_ms: elapsed() };
    }
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
}
