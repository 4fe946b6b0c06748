// Drives the official SpacetimeDB TypeScript SDK (npm `spacetimedb`, pinned in package.json) against a running
// server that hosts the quickstart chat module, through real `DbConnection`s built from chat_bindings.mjs.
// Used by test_ts_server.py, which starts our dev server and asserts on the JSON printed here.
//
//   node ts_chat.mjs <scenario> --uri ws://127.0.0.1:PORT [--db quickstart-chat] [--protocol v2|v3|default]
//                    [--compression gzip|none] [--step-timeout MS] [--deadline MS]
//
// Scenarios (chat_scenarios.mjs, shared with ts_chat_v1.mjs for SDK 1.x):
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

import {
  ChatClientBase,
  brief,
  captureSdkLog,
  hex,
  installRecordingWebSocket,
  parseOptions,
  rowCount,
  runScenario,
} from './chat_harness.mjs';
import { SCENARIOS } from './chat_scenarios.mjs';
import { importInternals, requireInstalled, sdkVersion } from './sdk_internal.mjs';
import { withTimeout } from './steps.mjs';

const V2 = 'v2.bsatn.spacetimedb';

requireInstalled(['ws']);
const { scenario, opts } = parseOptions('ts_chat.mjs', {
  protocol: ['default', 'v2', 'v3'],
  compression: ['gzip', 'none'],
});
const sdkLog = captureSdkLog();
await installRecordingWebSocket();

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
setGlobalLogLevel('warn');

const ROW_DECODERS = {
  message: AlgebraicType.makeDeserializer(Message.algebraicType),
  user: AlgebraicType.makeDeserializer(User.algebraicType),
};

// ---- message descriptions -------------------------------------------------------------------------------------
const tableRows = rows => rows.tables.map(t => ({ table: t.table, rows: rowCount(t.rows) }));

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

/** The fields of the JSON form of each v2 server message (ChatClientBase). */
const SERVER_FIELDS = {
  InitialConnection: v => ({ identity: hex(v.identity) }),
  SubscribeApplied: v => ({ requestId: v.requestId, querySetId: v.querySetId.id, tables: tableRows(v.rows) }),
  UnsubscribeApplied: v => ({
    requestId: v.requestId,
    querySetId: v.querySetId.id,
    tables: v.rows ? tableRows(v.rows) : null,
  }),
  SubscriptionError: v => ({ requestId: v.requestId ?? null, querySetId: v.querySetId.id, error: v.error }),
  TransactionUpdate: v => ({ querySets: describeTx(v) }),
  ReducerResult: v => ({
    requestId: v.requestId,
    outcome: v.result.tag,
    ...(v.result.tag === 'Ok' ? { querySets: describeTx(v.result.value.transactionUpdate) } : {}),
  }),
  OneOffQueryResult: v => ({ requestId: v.requestId, result: 'ok' in v.result ? 'ok' : 'err' }),
};

/** The fields of the JSON form of each v2 client message. */
const CLIENT_FIELDS = {
  Subscribe: v => ({ requestId: v.requestId, querySetId: v.querySetId.id, queries: v.queryStrings }),
  Unsubscribe: v => ({ requestId: v.requestId, querySetId: v.querySetId.id, flags: v.flags.tag ?? v.flags }),
  CallReducer: v => ({ requestId: v.requestId, reducer: v.reducer }),
  OneOffQuery: v => ({ requestId: v.requestId, query: v.queryString }),
};

// ---- one client: the 2.x specifics ----------------------------------------------------------------------------
class ChatClient extends ChatClientBase {
  serverFields = SERVER_FIELDS;
  clientFields = CLIENT_FIELDS;

  /** `protocolMode` v2: offer only v2.bsatn.spacetimedb; else what the SDK offers (v3, v2). */
  connection({ protocolMode = this.opts.protocol }) {
    return {
      builder: DbConnection.builder().withDatabaseName(this.opts.db),
      openSocket: args => WebsocketDecompressAdapter.openWebSocket(args),
      protocols: offered => (protocolMode === 'v2' ? [V2] : [...offered]),
    };
  }

  /** v2: one message a frame; v3: several back to back. */
  decodeFrame(bytes, side) {
    const type = side === 'server' ? ServerMessage : ClientMessage;
    const reader = new InternalReader(bytes);
    const out = [type.deserialize(reader)];
    if (this.protocol === V2) {
      if (reader.remaining !== 0) throw new Error(`${reader.remaining} trailing bytes after a v2 message`);
      return out;
    }
    while (reader.remaining > 0) out.push(type.deserialize(reader));
    return out;
  }

  /** Request ids far from the SDK's own. */
  encodeOneOff(query, n) {
    const requestId = 0x7fff0000 + n;
    const writer = new InternalWriter(64);
    ClientMessage.serialize(writer, ClientMessage.OneOffQuery({ requestId, queryString: query }));
    return { key: requestId, bytes: writer.getBuffer() };
  }

  oneOffAnswer(msg) {
    if (msg.tag !== 'OneOffQueryResult') return null;
    const { requestId, result } = msg.value;
    return 'ok' in result
      ? { key: requestId, ok: true, tables: result.ok.tables }
      : { key: requestId, ok: false, error: result.err };
  }

  rowReader(bytes) {
    return new BinaryReader(bytes);
  }

  decodeRow(table, reader) {
    return ROW_DECODERS[table](reader);
  }

  /** Call a reducer by accessor name; resolves with {ok, error?, errorClass?}. */
  async call(accessor, args, ms = this.opts.stepTimeout) {
    const t = Date.now();
    try {
      await withTimeout(this.conn.reducers[accessor](args), ms, `${this.name}: result of ${accessor}`);
      return { reducer: accessor, args: brief(args), ok: true, ms: Date.now() - t };
    } catch (e) {
      if (/^timed out/.test(e.message)) throw e;
      return { reducer: accessor, args: brief(args), ok: false, error: e.message, errorClass: e.constructor.name };
    }
  }
}

await runScenario({
  scenarios: SCENARIOS,
  scenario,
  opts,
  sdkVersion: sdkVersion(),
  sdkLog,
  makeClient: name => new ChatClient(name, opts),
});
