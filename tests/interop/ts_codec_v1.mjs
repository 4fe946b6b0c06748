// The official SpacetimeDB TypeScript SDK 1.x (npm `spacetimedb@1.12.0`, installed under the alias
// `spacetimedb-v1`, see package.json) as the other side of our v1 codecs (`v1.bsatn.spacetimedb`, issue #16).
// Used by test_ts_interop_v1.py, which makes the messages:
//
//   node ts_codec_v1.mjs < input.json        (run `npm ci` in this folder first)
//
// input.json:  {server: [{hex}], client: [{json}]}
//   server: v1 server frames our encoder wrote (tag byte + one ServerMessage, the payload maybe compressed)
//   client: v1 ClientMessages in the SDK's own shape ({tag, value} sums, camelCase fields), rendered as JSON
//           (see "JSON rendering" below)
// stdout:      {sdk_version, server: [{decoded, frame_error} | {error}], client: [{hex, decoded} | {error}]}
//   server: each frame opened the way the SDK opens a frame (its WebsocketDecompressAdapter), then read with
//           its ServerMessage type; every compressed query update is opened too (`opened`, see below)
//   client: each message written with the SDK's ClientMessage type (`hex`), and read back (`decoded`)
//
// JSON rendering of an SDK value: Uint8Array as hex, bigint as a decimal string, Identity and ConnectionId as
// their hex, `undefined` (an Option's none) as null; everything else (objects, {tag, value} sums, the
// Timestamp / TimeDuration objects with their one field) as it is.
//
// Brotli: SDK 1.12.0 reads none of it. A frame with tag 1 is rejected by WebsocketDecompressAdapter
// (src/sdk/websocket_decompress_adapter.ts, "Brotli Compression not supported"), a `Brotli`
// CompressableQueryUpdate by DbConnectionImpl (src/sdk/db_connection_impl.ts, parseTableUpdate). Both are
// opened here with node:zlib instead (the SDK's rejection of a frame is reported in `frame_error`), and read
// with the SDK's types as usual. Gzip goes through the SDK's own `decompress` (src/sdk/decompress.ts).
//
// Internals of the SDK from a copy of its bundle with a few more exports (the gitignored
// `.stdb_internal_codec_v1.mjs`, see sdk_internal.mjs).

import { readFileSync } from 'node:fs';
import zlib from 'node:zlib';

import { SDK_1, importInternals, requireInstalled, sdkVersion } from './sdk_internal.mjs';

requireInstalled([], SDK_1);
const sdk = await importInternals(
  '.stdb_internal_codec_v1.mjs',
  ['ClientMessage', 'ServerMessage', 'WebsocketDecompressAdapter', 'decompress', 'query_update_type_default'],
  SDK_1
);
const { AlgebraicType, BinaryReader, BinaryWriter, ConnectionId, Identity } = sdk;
const { ClientMessage, ServerMessage, WebsocketDecompressAdapter, decompress } = sdk;
const QueryUpdate = sdk.query_update_type_default;
for (const [name, v] of Object.entries({ ClientMessage, ServerMessage, WebsocketDecompressAdapter, decompress, QueryUpdate })) {
  if (v === undefined) throw new Error(`the SDK 1.x bundle has no top-level ${name}; the export trick needs updating`);
}

const hex = bytes => Buffer.from(bytes).toString('hex');
const fromHex = h => new Uint8Array(Buffer.from(h, 'hex'));

/** Read `bytes` as one value of `type` with the SDK, which must use every byte. */
function readAll(type, bytes, what) {
  const reader = new BinaryReader(bytes);
  const value = AlgebraicType.deserializeValue(reader, type.algebraicType);
  if (reader.remaining !== 0) throw new Error(`${reader.remaining} bytes left after the ${what}`);
  return value;
}

// ---- server frames -------------------------------------------------------------------------------------------
/** The payload of a frame as the SDK's WebsocketDecompressAdapter hands it on; {payload, frame_error}. */
async function openFrame(bytes) {
  const socket = {}; // stands in for the WebSocket the adapter wraps: it sets the socket's on* handlers
  const adapter = new WebsocketDecompressAdapter(socket);
  let payload = null;
  adapter.onmessage = ({ data }) => {
    payload = data;
  };
  try {
    await socket.onmessage({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) });
  } catch (err) {
    if (bytes[0] !== 1) throw err;
    return { payload: new Uint8Array(zlib.brotliDecompressSync(bytes.subarray(1))), frame_error: err.message };
  }
  if (payload === null) throw new Error('the adapter passed nothing on');
  return { payload, frame_error: null };
}

/** The QueryUpdate inside a Gzip or Brotli CompressableQueryUpdate. */
async function openQueryUpdate({ tag, value }) {
  const raw = tag === 'Gzip' ? await decompress(value, 'gzip') : new Uint8Array(zlib.brotliDecompressSync(value));
  return readAll(QueryUpdate, raw, `${tag} QueryUpdate`);
}

// (the only sums of a v1 ServerMessage with these variants are CompressableQueryUpdates)
const isCompressedUpdate = v => (v.tag === 'Gzip' || v.tag === 'Brotli') && v.value instanceof Uint8Array;

/** The JSON rendering of an SDK value; compressed query updates get their content as `opened`. */
async function render(v) {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return hex(v);
  if (v instanceof Identity || v instanceof ConnectionId) return v.toHexString();
  if (Array.isArray(v)) {
    const out = [];
    for (const item of v) out.push(await render(item));
    return out;
  }
  const out = {};
  for (const [key, item] of Object.entries(v)) out[key] = await render(item);
  if (isCompressedUpdate(v)) out.opened = await render(await openQueryUpdate(v));
  return out;
}

async function decodeServer({ hex: frameHex }) {
  const { payload, frame_error } = await openFrame(fromHex(frameHex));
  return { decoded: await render(readAll(ServerMessage, payload, 'ServerMessage')), frame_error };
}

// ---- client messages -----------------------------------------------------------------------------------------
const BIG = new Set(['U64', 'I64', 'U128', 'I128', 'U256', 'I256']);

/** The SDK value of `type` that renders as `json` (the inverse of render, for the types of ClientMessage). */
function fromJson(type, json) {
  switch (type.tag) {
    case 'Product': {
      const { elements } = type.value;
      const names = elements.map(e => e.name);
      if (Object.keys(json).sort().join() !== [...names].sort().join()) {
        throw new Error(`expected the fields ${names}, got ${Object.keys(json)}`);
      }
      return Object.fromEntries(elements.map(e => [e.name, fromJson(e.algebraicType, json[e.name])]));
    }
    case 'Sum': {
      const variant = type.value.variants.find(v => v.name === json.tag);
      if (variant === undefined) throw new Error(`no variant ${json.tag}`);
      return { tag: json.tag, value: fromJson(variant.algebraicType, json.value) };
    }
    case 'Array':
      return type.value.tag === 'U8' ? fromHex(json) : json.map(item => fromJson(type.value, item));
    default:
      return BIG.has(type.tag) ? BigInt(json) : json;
  }
}

async function encodeClient({ json }) {
  const writer = new BinaryWriter(64);
  AlgebraicType.serializeValue(writer, ClientMessage.algebraicType, fromJson(ClientMessage.algebraicType, json));
  const bytes = writer.getBuffer().slice();
  return { hex: hex(bytes), decoded: await render(readAll(ClientMessage, bytes, 'ClientMessage')) };
}

// ---- main ------------------------------------------------------------------------------------------------------
/** f(item) for each item; a throw is reported as that item's `error` rather than ending the run. */
async function each(items, f) {
  const out = [];
  for (const item of items) {
    try {
      out.push(await f(item));
    } catch (err) {
      out.push({ error: String(err?.stack ?? err) });
    }
  }
  return out;
}

const input = JSON.parse(readFileSync(0, 'utf8'));
process.stdout.write(
  JSON.stringify({
    sdk_version: sdkVersion(SDK_1),
    server: await each(input.server, decodeServer),
    client: await each(input.client, encodeClient),
  })
);
