// Drives the official SpacetimeDB TypeScript SDK 1.x (npm `spacetimedb@1.12.0`, installed under the alias
// `spacetimedb-v1`, see package.json) against a running server that hosts the quickstart chat module, over the
// v1 protocol (`v1.bsatn.spacetimedb`, the only one SDK 1.x speaks), through real `DbConnection`s built from
// chat_bindings_v1.mjs. Used by test_ts_server_v1.py, which starts our dev server and asserts on the JSON
// printed here.
//
//   node ts_chat_v1.mjs <chat|reconnect|oneoff-unsubscribe> --uri ws://127.0.0.1:PORT [--db quickstart-chat]
//                       [--compression gzip|none] [--light off|on] [--step-timeout MS] [--deadline MS]
//
// The scenarios are those of ts_chat.mjs (chat_scenarios.mjs). What SDK 1.12.0 does differently:
//   * reducer calls return nothing and always carry request id 0: the caller learns the outcome from its own
//     reducer callback (`conn.reducers.onSetName((ctx, args) => ...)`, `ctx.event.status`), fired by the
//     TransactionUpdate the server sends it; call() waits for the callback whose caller is this connection;
//   * reducer callbacks fire for every client whose rows a call changed, with the caller's identity and the
//     arguments (`ctx.event.callerIdentity`, `ctx.event.reducer.args`): recorded in `reducer_events`;
//   * subscriptions are SubscribeMulti / UnsubscribeMulti by query id (request id 0 again);
//   * `--light on` (`withLightMode(true)`): other clients' calls arrive as TransactionUpdateLight, without the
//     caller or the reducer, so only a client's own calls fire its reducer callbacks.
// Output and exit codes as for ts_chat.mjs.
//
// Only the public API of the SDK is used for the clients. Internals, from a copy of its bundle with a few
// more exports (the gitignored `.stdb_internal_chat_v1.mjs`):
//   * `WebsocketDecompressAdapter.createWebSocketFn` (the SDK's default socket factory), wrapped in a
//     `withWSFn` factory that taps the frames (decoded with the SDK's own v1 `ClientMessage` /
//     `ServerMessage`). It passes the subprotocol as a one-element array instead of the SDK's string (the
//     same Sec-WebSocket-Protocol header), which names the client to the recording WebSocket;
//   * SDK 1.12.0 has no one-off query API: one-off queries are sent as a `ClientMessage.OneOffQuery` encoded by
//     the SDK on the connection's own socket, and their `OneOffQueryResponse` is taken from the tap and kept
//     from the SDK, which never asks for one and throws on it ("TypeScript SDK never sends one-off queries",
//     db_connection_impl.ts), which would stop its processing of later messages.

import {
  ChatClientBase,
  brief,
  bytesHex,
  captureSdkLog,
  hex,
  installRecordingWebSocket,
  parseOptions,
  rowCount,
  runScenario,
} from './chat_harness.mjs';
import { SCENARIOS } from './chat_scenarios.mjs';
import { SDK_1, importInternals, requireInstalled, sdkVersion } from './sdk_internal.mjs';

requireInstalled(['ws', 'spacetimedb'], SDK_1); // (the bindings share code with the 2.x ones)
const { scenario, opts } = parseOptions('ts_chat_v1.mjs', { compression: ['gzip', 'none'], light: ['off', 'on'] });
const sdkLog = captureSdkLog();
await installRecordingWebSocket();

// ---- the SDK: public API for the clients, a bundle copy for the message types ------------------------------
const internal = await importInternals(
  '.stdb_internal_chat_v1.mjs',
  ['ClientMessage', 'ServerMessage', 'WebsocketDecompressAdapter'],
  SDK_1
);
// the copy's types are read and written with its own AlgebraicType / BinaryReader / BinaryWriter; rows and
// reducer arguments with the package's
const { ClientMessage, ServerMessage, WebsocketDecompressAdapter } = internal;
const { AlgebraicType: InternalType, BinaryReader: InternalReader, BinaryWriter: InternalWriter } = internal;
const { AlgebraicType, BinaryReader } = await import('spacetimedb-v1');
const { DbConnection, Message, User, reducers: REDUCERS } = await import('./chat_bindings_v1.mjs');

const ROW_TYPES = { message: Message.algebraicType, user: User.algebraicType };

// ---- message descriptions -------------------------------------------------------------------------------------
/** A v1 DatabaseUpdate: per table, its id, name, row count and per query set its inserts and deletes. */
function describeUpdate(update) {
  return update.tables.map(t => ({
    table: t.tableName,
    tableId: t.tableId,
    numRows: Number(t.numRows),
    updates: t.updates.map(u =>
      u.tag === 'Uncompressed'
        ? { inserts: rowCount(u.value.inserts), deletes: rowCount(u.value.deletes) }
        : { encoding: u.tag }
    ),
  }));
}

/** The fields of the JSON form of each v1 server message (ChatClientBase). */
const SERVER_FIELDS = {
  IdentityToken: v => ({ identity: hex(v.identity), connectionId: hex(v.connectionId) }),
  SubscribeMultiApplied: v => ({ requestId: v.requestId, queryId: v.queryId.id, tables: describeUpdate(v.update) }),
  UnsubscribeMultiApplied: v => ({ requestId: v.requestId, queryId: v.queryId.id, tables: describeUpdate(v.update) }),
  SubscriptionError: v => ({ requestId: v.requestId ?? null, queryId: v.queryId ?? null, error: v.error }),
  TransactionUpdate: v => ({
    status: v.status.tag,
    error: v.status.tag === 'Failed' ? v.status.value : null,
    caller: hex(v.callerIdentity),
    callerConnectionId: hex(v.callerConnectionId),
    reducer: v.reducerCall.reducerName,
    reducerId: v.reducerCall.reducerId,
    requestId: v.reducerCall.requestId,
    energy: v.energyQuantaUsed.quanta.toString(),
    tables: v.status.tag === 'Committed' ? describeUpdate(v.status.value) : [],
  }),
  TransactionUpdateLight: v => ({ requestId: v.requestId, tables: describeUpdate(v.update) }),
  OneOffQueryResponse: v => ({
    messageId: bytesHex(v.messageId),
    error: v.error ?? null,
    tables: v.tables.map(t => ({ table: t.tableName, rows: rowCount(t.rows) })),
  }),
};

/** The fields of the JSON form of each v1 client message. */
const CLIENT_FIELDS = {
  SubscribeMulti: v => ({ requestId: v.requestId, queryId: v.queryId.id, queries: v.queryStrings }),
  UnsubscribeMulti: v => ({ requestId: v.requestId, queryId: v.queryId.id }),
  CallReducer: v => ({ requestId: v.requestId, reducer: v.reducer, flags: v.flags }),
  OneOffQuery: v => ({ messageId: bytesHex(v.messageId), query: v.queryString }),
};

// ---- one client: the 1.x specifics ----------------------------------------------------------------------------
class ChatClientV1 extends ChatClientBase {
  serverFields = SERVER_FIELDS;
  clientFields = CLIENT_FIELDS;
  deliverOneOffAnswers = false;
  seesOthersCalls = this.opts.light === 'off';

  /** 1.x names the database with withModuleName(); its one subprotocol (a string) goes on as an array. */
  connection() {
    return {
      builder: DbConnection.builder()
        .withModuleName(this.opts.db)
        .withLightMode(this.opts.light === 'on'),
      openSocket: args => WebsocketDecompressAdapter.createWebSocketFn(args),
      protocols: offered => [offered],
    };
  }

  /** Every reducer callback, for every caller. */
  connected(conn) {
    for (const [accessor, def] of Object.entries(REDUCERS)) {
      const on = `on${accessor[0].toUpperCase()}${accessor.slice(1)}`;
      conn.reducers[on]((ctx, args) => {
        const ev = ctx.event;
        this.recordReducerEvent({
          reducer: def.name,
          accessor,
          args: brief(args),
          caller: hex(ev.callerIdentity),
          caller_connection_id: hex(ev.callerConnectionId),
          own: hex(ev.callerIdentity) === this.identity && hex(ev.callerConnectionId) === hex(conn.connectionId),
          status: ev.status.tag,
          error: ev.status.tag === 'Failed' ? ev.status.value : null,
          timestamp: Number(ev.timestamp.__timestamp_micros_since_unix_epoch__),
        });
      });
    }
  }

  /** v1: exactly one message a frame. */
  decodeFrame(bytes, side) {
    const type = side === 'server' ? ServerMessage : ClientMessage;
    const reader = new InternalReader(bytes);
    const msg = InternalType.deserializeValue(reader, type.algebraicType);
    if (reader.remaining !== 0) throw new Error(`${reader.remaining} trailing bytes after a v1 ${msg.tag}`);
    return [msg];
  }

  encodeOneOff(query, n) {
    const messageId = new TextEncoder().encode(`one-off ${n}`);
    const writer = new InternalWriter(64);
    InternalType.serializeValue(
      writer,
      ClientMessage.algebraicType,
      ClientMessage.OneOffQuery({ messageId, queryString: query })
    );
    return { key: bytesHex(messageId), bytes: writer.getBuffer() };
  }

  oneOffAnswer(msg) {
    if (msg.tag !== 'OneOffQueryResponse') return null;
    const { messageId, error, tables } = msg.value;
    return {
      key: bytesHex(messageId),
      ok: error === undefined,
      error,
      tables: tables.map(t => ({ table: t.tableName, rows: t.rows })),
    };
  }

  rowReader(bytes) {
    return new BinaryReader(bytes);
  }

  decodeRow(table, reader) {
    return AlgebraicType.deserializeValue(reader, ROW_TYPES[table]);
  }

  /**
   * Call a reducer by accessor name and wait for this connection's own reducer callback for it (same
   * reducer and arguments); resolves with {ok, error?, status?}.
   */
  async call(accessor, args, ms = this.opts.stepTimeout) {
    const t = Date.now();
    const json = JSON.stringify(brief(args));
    const own = this.waitReducerEvent(
      e => e.own && e.accessor === accessor && JSON.stringify(e.args) === json,
      `the result of ${accessor} (its own reducer callback)`,
      this.reducerEvents.length,
      ms
    );
    this.conn.reducers[accessor](args);
    const ev = await own;
    const result = { reducer: accessor, args: brief(args), ok: ev.status === 'Committed', ms: Date.now() - t };
    if (!result.ok) Object.assign(result, { error: ev.error, status: ev.status });
    return result;
  }
}

await runScenario({
  scenarios: SCENARIOS,
  scenario,
  opts,
  sdkVersion: sdkVersion(SDK_1),
  sdkLog,
  makeClient: name => new ChatClientV1(name, opts),
});
