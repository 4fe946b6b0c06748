// Test vectors made by the official SpacetimeDB TypeScript SDK (npm `spacetimedb`, pinned in package.json),
// used by test_ts_interop.py as an independent BSATN encoder.
//
//   node ts_vectors.mjs <seed>      (run `npm ci` in this folder first)
//
// Prints one JSON object to stdout:
//   values:          [{name, type, values: [{json, hex, display?}]}]   BSATN of random values of every SATS type
//   client_messages: [{case, desc, hex}]                              every v2 ClientMessage variant
//   server_messages: [{case, desc, hex}]                              every v2 ServerMessage variant
//   frames:          v3 client / server frames and gzip-compressed server frames
//
// `type` is the AlgebraicType in typed SATS-JSON form, `json` the value in SATS-JSON input form (big integers
// as decimal or 0x strings, -0.0 written as `-0.0`, NaN/Infinity as strings), `hex` the bytes written by the SDK.
// `desc` describes a message with the field names of the Python dataclasses (snake_case, bytes as hex,
// u64/i64 as decimal strings); the script turns each desc into the SDK's message value and serializes that.
//
// The SDK does not export ClientMessage/ServerMessage: the script imports a copy of its bundle that does
// (the gitignored sibling `.stdb_internal.mjs`, see sdk_internal.mjs).

import zlib from 'node:zlib';

import { MESSAGE_INTERNALS, importInternals, requireInstalled, sdkVersion } from './sdk_internal.mjs';

requireInstalled();
const SDK_VERSION = sdkVersion();
const sdk = await importInternals('.stdb_internal.mjs', MESSAGE_INTERNALS);
const {
  AlgebraicType,
  BinaryReader,
  BinaryWriter,
  ConnectionId,
  Identity,
  ScheduleAt,
  TimeDuration,
  Timestamp,
  Uuid,
  t,
  ClientMessage,
  ServerMessage,
  encodeClientMessagesV3,
  forEachServerMessageV3,
} = sdk;
for (const [name, v] of Object.entries({ ClientMessage, ServerMessage, encodeClientMessagesV3, forEachServerMessageV3 })) {
  if (v === undefined) throw new Error(`the SDK bundle has no top-level ${name}; the export trick needs updating`);
}

// ---- seeded PRNG ----------------------------------------------------------------------------------------
function makeRng(seed) {
  // splitmix32 to spread the seed, then mulberry32
  let s = (Number(BigInt.asUintN(32, BigInt(seed))) ^ 0x9e3779b9) >>> 0;
  s = Math.imul(s ^ (s >>> 16), 0x85ebca6b) >>> 0;
  s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35) >>> 0;
  s = (s ^ (s >>> 16)) >>> 0;
  const u32 = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return (x ^ (x >>> 14)) >>> 0;
  };
  const rng = {
    u32,
    float: () => u32() / 4294967296,
    int: (lo, hi) => lo + Math.floor((u32() / 4294967296) * (hi - lo + 1)), // inclusive, |range| <= 2^32
    chance: p => u32() / 4294967296 < p,
    pick: arr => arr[Math.floor((u32() / 4294967296) * arr.length)],
    bits(n) {
      // a uniform BigInt of n bits
      let v = 0n;
      for (let got = 0; got < n; got += 32) v = (v << 32n) | BigInt(u32());
      return BigInt.asUintN(n, v);
    },
  };
  return rng;
}

// ---- helpers ---------------------------------------------------------------------------------------------
const hex = bytes => Buffer.from(bytes).toString('hex');
const fromHex = h => new Uint8Array(Buffer.from(h, 'hex'));

function serialize(algebraicType, value) {
  const writer = new BinaryWriter(64);
  AlgebraicType.makeSerializer(algebraicType)(writer, value);
  return writer.getBuffer().slice();
}

function typeToJson(ty) {
  const named = items =>
    items.map(e => ({
      name: e.name === undefined ? { none: [] } : { some: e.name },
      algebraic_type: typeToJson(e.algebraicType),
    }));
  switch (ty.tag) {
    case 'Product':
      return { Product: { elements: named(ty.value.elements) } };
    case 'Sum':
      return { Sum: { variants: named(ty.value.variants) } };
    case 'Array':
      return { Array: typeToJson(ty.value) };
    case 'Ref':
      return { Ref: ty.value };
    default:
      return { [ty.tag]: [] };
  }
}

// JSON that keeps -0.0 and BigInts (as decimal strings)
const NEG_ZERO = '\u0000NEG_ZERO\u0000';
function toJsonText(obj) {
  return JSON.stringify(obj, (_k, v) => {
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'number' && Object.is(v, -0)) return NEG_ZERO;
    return v;
  }).replaceAll(JSON.stringify(NEG_ZERO), '-0.0');
}

// ---- value generators: each returns {ts, json[, display][, ser]} -------------------------------------------
const INT_INFO = {
  U8: [8, false], I8: [8, true], U16: [16, false], I16: [16, true], U32: [32, false], I32: [32, true],
  U64: [64, false], I64: [64, true], U128: [128, false], I128: [128, true], U256: [256, false], I256: [256, true],
};

function intRange(tag) {
  const [bits, signed] = INT_INFO[tag];
  const lo = signed ? -(1n << BigInt(bits - 1)) : 0n;
  const hi = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  return [lo, hi];
}

function intEdges(tag) {
  const [bits, signed] = INT_INFO[tag];
  const [lo, hi] = intRange(tag);
  const out = new Set([0n, 1n, 2n, hi, hi - 1n, lo, lo + 1n, 127n, 128n, 255n, 256n]);
  if (signed) for (const v of [-1n, -2n, -128n, -129n]) out.add(v);
  for (let b = 7; b < bits; b += 8) {
    out.add((1n << BigInt(b)) - 1n);
    out.add(1n << BigInt(b));
    if (signed) out.add(-(1n << BigInt(b)));
  }
  out.add(9007199254740991n); // 2^53 - 1 (largest exact JS number)
  out.add(9007199254740993n);
  return [...out].filter(v => v >= lo && v <= hi);
}

function randomInt(rng, tag) {
  const [bits, signed] = INT_INFO[tag];
  const [lo, hi] = intRange(tag);
  let v;
  if (rng.chance(0.5)) {
    v = signed ? BigInt.asIntN(bits, rng.bits(bits)) : rng.bits(bits); // uniform over the full range
  } else {
    const width = rng.int(0, bits); // small and medium magnitudes
    v = width === 0 ? 0n : rng.bits(width);
    if (signed && rng.chance(0.5)) v = -v;
  }
  return v < lo ? lo : v > hi ? hi : v;
}

function intGen(tag) {
  const big = INT_INFO[tag][0] > 32;
  const wrap = v => (big ? { ts: v, json: v.toString() } : { ts: Number(v), json: Number(v) });
  return { edges: intEdges(tag).map(wrap), gen: rng => wrap(randomInt(rng, tag)) };
}

function floatJson(v) {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return v; // -0 is kept by toJsonText
}

function floatGen(tag) {
  const f32 = tag === 'F32';
  const conv = f32 ? Math.fround : x => x;
  const edges = f32
    ? [0, -0, 1, -1, 0.5, Math.fround(0.1), Math.fround(-0.1), Math.fround(Math.PI), 16777216, 16777217,
        3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38, 1.401298464324817e-45,
        -1.401298464324817e-45, Infinity, -Infinity, NaN]
    : [0, -0, 1, -1, 0.5, 0.1, -0.1, 1 / 3, Math.PI, 2 ** 53, 2 ** 53 + 2, Number.MAX_VALUE, -Number.MAX_VALUE,
        Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072014e-308, Number.EPSILON, 1e21, 1e-7, 123456789.125,
        Infinity, -Infinity, NaN];
  const view = new DataView(new ArrayBuffer(8));
  const gen = rng => {
    let v;
    do {
      const mode = rng.int(0, 3);
      if (mode <= 1) {
        // any bit pattern (NaN payloads are skipped: JS does not promise to keep them)
        if (f32) {
          view.setUint32(0, rng.u32(), true);
          v = view.getFloat32(0, true);
        } else {
          view.setUint32(0, rng.u32(), true);
          view.setUint32(4, rng.u32(), true);
          v = view.getFloat64(0, true);
        }
      } else if (mode === 2) {
        v = conv((rng.float() - 0.5) * 2000);
      } else {
        v = conv(rng.int(-100000, 100000) / 8);
      }
    } while (Number.isNaN(v));
    return { ts: v, json: floatJson(v) };
  };
  return { edges: edges.map(x => ({ ts: conv(x), json: floatJson(conv(x)) })), gen };
}

const STRING_POOLS = [
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,;:!?\'"\\/{}[]()<>@#$%^&*+=|~`',
  '\u0000\u0001\u0007\t\n\r\u001b\u007f',
  'éèàçñüößÆØÅ¿¡£€¥©®°±µ',
  'αβγδεζηθλμπσωΩДЖЙЯжщюя',
  '漢字日本語中文한국어ひらがなカタカナ',
  'שלוםمرحبا',
  '\u0301\u0308\u200b\u200d\ufeff\ufffd\uffff',
  ['😀', '🎮', '🚀', '👩‍💻', '🇫🇷', '\u{10ffff}', '\u{1d11e}', '\u{20000}'],
];
const STRING_EDGES = ['', ' ', 'a', '\u0000', 'hello, world', 'é', '漢字', '😀', '\u{10ffff}', 'e\u0301',
  '\uffff\ufeff', '\ufeffleading BOM', 'SELECT * FROM player WHERE name = \'x\'', 'x'.repeat(300), '👩‍💻'.repeat(40)];

function randomString(rng, maxLen = 24) {
  const n = rng.chance(0.05) ? rng.int(100, 600) : rng.int(0, maxLen);
  const pool = [...rng.pick(STRING_POOLS)];
  const mixed = rng.chance(0.3);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.pick(mixed ? [...rng.pick(STRING_POOLS)] : pool);
  return s;
}

function randomBytes(rng, maxLen = 40) {
  const n = rng.chance(0.03) ? rng.int(1000, 5000) : rng.int(0, maxLen);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.u32() & 0xff;
  return out;
}

const G = {
  bool: () => ({
    edges: [{ ts: false, json: false }, { ts: true, json: true }],
    gen: rng => {
      const v = rng.chance(0.5);
      return { ts: v, json: v };
    },
  }),
  string: () => ({
    edges: STRING_EDGES.map(s => ({ ts: s, json: s })),
    gen: rng => {
      const s = randomString(rng);
      return { ts: s, json: s };
    },
  }),
  bytes: () => ({
    edges: [new Uint8Array(0), new Uint8Array([0]), new Uint8Array([255]), new Uint8Array(1024).fill(0xab)].map(b => ({
      ts: b,
      json: hex(b),
    })),
    gen: rng => {
      const b = randomBytes(rng);
      return { ts: b, json: hex(b) };
    },
  }),
  array: (elem, maxLen = 8, longChance = 0) => ({
    edges: [{ ts: [], json: [] }, ...elem.edges.slice(0, 4).map(e => ({ ts: [e.ts], json: [e.json] }))],
    gen: rng => {
      const n = rng.chance(longChance) ? rng.int(200, 2000) : rng.chance(0.1) ? 0 : rng.int(1, maxLen);
      const items = [];
      for (let i = 0; i < n; i++) items.push(rng.chance(0.2) && elem.edges.length ? rng.pick(elem.edges) : elem.gen(rng));
      return { ts: items.map(x => x.ts), json: items.map(x => x.json) };
    },
  }),
  option: inner => {
    const none = rng => ({ ts: undefined, json: rng && rng.chance(0.5) ? null : { none: [] } });
    const some = x => ({ ts: x.ts, json: { some: x.json } });
    return {
      edges: [none(null), { ts: undefined, json: null }, ...inner.edges.slice(0, 4).map(some)],
      gen: rng => (rng.chance(0.3) ? none(rng) : some(rng.chance(0.2) ? rng.pick(inner.edges) : inner.gen(rng))),
    };
  },
  product: fields => {
    const build = pick => {
      const ts = {};
      const json = {};
      for (const [name, g] of fields) {
        const x = pick(g);
        ts[name] = x.ts;
        json[name] = x.json;
      }
      return { ts, json };
    };
    return {
      edges: [build(g => g.edges[0]), build(g => g.edges[g.edges.length - 1])],
      gen: rng => {
        const v = build(g => (rng.chance(0.2) ? rng.pick(g.edges) : g.gen(rng)));
        // SATS-JSON input also accepts a product as an array, in declaration order
        if (rng.chance(0.15)) v.json = fields.map(([name]) => v.json[name]);
        return v;
      },
    };
  },
  sum: variants => {
    const one = (name, x) => ({ ts: { tag: name, value: x ? x.ts : {} }, json: { [name]: x ? x.json : [] } });
    const edges = [];
    for (const [name, g] of variants) edges.push(one(name, g && g.edges[0]));
    return {
      edges,
      gen: rng => {
        const [name, g] = rng.pick(variants);
        return one(name, g && (rng.chance(0.2) ? rng.pick(g.edges) : g.gen(rng)));
      },
    };
  },
  result: (ok, err) => {
    const mk = (key, x) => ({ ts: { [key]: x.ts }, json: { [key]: x.json } });
    return {
      edges: [mk('ok', ok.edges[0]), mk('err', err.edges[0]), mk('ok', ok.edges[1]), mk('err', err.edges[1])],
      gen: rng => (rng.chance(0.5) ? mk('ok', ok.gen(rng)) : mk('err', err.gen(rng))),
    };
  },
};

// special types: `display` is what the SDK prints, for the Python side to compare with str()
const U128_MAX = (1n << 128n) - 1n;
const U256_MAX = (1n << 256n) - 1n;
const hexOrDec = (rng, v) => (rng && rng.chance(0.5) ? '0x' + v.toString(16) : v.toString());

G.identity = () => {
  const mk = v => {
    const id = new Identity(v);
    return { ts: id, json: { __identity__: '0x' + id.toHexString() }, display: id.toHexString() };
  };
  return {
    edges: [0n, 1n, U256_MAX, 1n << 255n, 0xc200n << 240n, 0xffn].map(mk),
    gen: rng => mk(rng.chance(0.1) ? rng.bits(rng.int(1, 64)) : rng.bits(256)),
  };
};
G.connectionId = () => {
  const mk = (v, rng) => {
    const c = new ConnectionId(v);
    return { ts: c, json: { __connection_id__: hexOrDec(rng, v) }, display: c.toHexString() };
  };
  return {
    edges: [0n, 1n, U128_MAX, 1n << 127n, 0xabcdn].map(v => mk(v, null)),
    gen: rng => mk(rng.chance(0.1) ? rng.bits(rng.int(1, 64)) : rng.bits(128), rng),
  };
};
G.uuid = () => {
  const mk = (u, rng) => ({ ts: u, json: { __uuid__: hexOrDec(rng, u.asBigInt()) }, display: u.toString() });
  return {
    edges: [Uuid.NIL, Uuid.MAX, new Uuid(1n), Uuid.parse('0000647e-5180-7000-8000-000200000000')].map(u => mk(u, null)),
    gen: rng => {
      if (rng.chance(0.5)) {
        const b = new Uint8Array(16);
        for (let i = 0; i < 16; i++) b[i] = rng.u32() & 0xff;
        return mk(Uuid.fromRandomBytesV4(b), rng);
      }
      return mk(new Uuid(rng.bits(128)), rng);
    },
  };
};
const I64_EDGES = intEdges('I64');
G.timestamp = () => {
  const mk = v => ({ ts: new Timestamp(v), json: { __timestamp_micros_since_unix_epoch__: v.toString() } });
  return {
    edges: [...I64_EDGES, 1704067200000000n, 1764151200123456n].map(mk),
    gen: rng => mk(rng.chance(0.5) ? 1600000000000000n + rng.bits(48) : randomInt(rng, 'I64')),
  };
};
G.timeDuration = () => {
  const mk = v => ({ ts: new TimeDuration(v), json: { __time_duration_micros__: v.toString() } });
  return { edges: [...I64_EDGES, 1000000n, -1000000n].map(mk), gen: rng => mk(randomInt(rng, 'I64')) };
};
G.scheduleAt = () => {
  const td = G.timeDuration();
  const ts = G.timestamp();
  const interval = x => ({ ts: ScheduleAt.interval(x.ts.micros), json: { Interval: x.json } });
  const time = x => ({ ts: ScheduleAt.time(x.ts.microsSinceUnixEpoch), json: { Time: x.json } });
  return {
    edges: [...td.edges.slice(0, 6).map(interval), ...ts.edges.slice(0, 6).map(time)],
    gen: rng => (rng.chance(0.5) ? interval(td.gen(rng)) : time(ts.gen(rng))),
  };
};

// Option<Option<U8>>: the SDK models an option as "value or undefined", so it cannot express Some(None).
// For that one value we serialize with the SDK's generic sum serializer and a type that differs only in
// the outer variant names (BSATN does not encode names), giving the bytes of Some(None).
const NESTED_OPTION_ALT = AlgebraicType.Sum({
  variants: [
    { name: 'Some_', algebraicType: t.option(t.u8()).algebraicType },
    { name: 'None_', algebraicType: t.unit().algebraicType },
  ],
});
G.nestedOption = () => {
  const u8 = intGen('U8');
  const someNone = { json: { some: { none: [] } }, ser: () => serialize(NESTED_OPTION_ALT, { tag: 'Some_', value: undefined }) };
  const someNoneNull = { json: { some: null }, ser: someNone.ser };
  const someSome = x => ({ ts: x.ts, json: { some: { some: x.json } } });
  const none = { ts: undefined, json: { none: [] } };
  return {
    edges: [none, { ts: undefined, json: null }, someNone, someNoneNull, ...u8.edges.slice(0, 4).map(someSome)],
    gen: rng => {
      const r = rng.int(0, 2);
      return r === 0 ? none : r === 1 ? someNone : someSome(u8.gen(rng));
    },
  };
};

// ---- the types -----------------------------------------------------------------------------------------
const prim = (builder, g) => [builder, g];
const U8 = () => intGen('U8');
const Vec2 = t.object('Vec2', { x: t.f32(), y: t.f32() });
const vec2 = () => G.product([['x', floatGen('F32')], ['y', floatGen('F32')]]);
const Color = t.enum('Color', ['Red', 'Green', 'Blue', 'Alpha', 'Other']);
const color = () => G.sum(['Red', 'Green', 'Blue', 'Alpha', 'Other'].map(n => [n, null]));
const Rect = t.object('Rect', { w: t.u32(), h: t.u32(), origin: Vec2 });
const rect = () => G.product([['w', intGen('U32')], ['h', intGen('U32')], ['origin', vec2()]]);
const Shape = t.enum('Shape', {
  Circle: t.f64(),
  Rect,
  Label: t.string(),
  Empty: t.unit(),
  Points: t.array(t.i32()),
  Maybe: t.option(t.u8()),
  Owner: t.identity(),
  Nested: t.enum('Inner', { A: t.u64(), B: t.bool() }),
});
const shape = () =>
  G.sum([
    ['Circle', floatGen('F64')],
    ['Rect', rect()],
    ['Label', G.string()],
    ['Empty', null],
    ['Points', G.array(intGen('I32'))],
    ['Maybe', G.option(U8())],
    ['Owner', G.identity()],
    ['Nested', G.sum([['A', intGen('U64')], ['B', G.bool()]])],
  ]);

// a product of fixed-size special types (one struct on our side)
const Stamp = t.object('Stamp', {
  who: t.identity(), conn: t.connectionId(), at: t.timestamp(), took: t.timeDuration(), id: t.uuid(), n: t.u8(),
});
const stamp = () =>
  G.product([
    ['who', G.identity()], ['conn', G.connectionId()], ['at', G.timestamp()], ['took', G.timeDuration()],
    ['id', G.uuid()], ['n', U8()],
  ]);
// the most variants a sum may have: tags up to 255
const WIDE_NAMES = Array.from({ length: 256 }, (_, i) => `V${i}`);
const Wide = t.enum('Wide', WIDE_NAMES);

const TYPES = [
  ['Bool', t.bool(), G.bool()],
  ...['U8', 'I8', 'U16', 'I16', 'U32', 'I32', 'U64', 'I64', 'U128', 'I128', 'U256', 'I256'].map(tag => [
    tag,
    t[tag.toLowerCase()](),
    intGen(tag),
  ]),
  ['F32', t.f32(), floatGen('F32')],
  ['F64', t.f64(), floatGen('F64')],
  ['String', t.string(), G.string()],
  ['Bytes', t.byteArray(), G.bytes()],
  ['Array<U8> (t.array)', t.array(t.u8()), G.bytes()],
  ['Array<U32>', t.array(t.u32()), G.array(intGen('U32'), 20, 0.03)],
  ['Array<I8>', t.array(t.i8()), G.array(intGen('I8'), 20)],
  ['Array<I64>', t.array(t.i64()), G.array(intGen('I64'))],
  ['Array<I128>', t.array(t.i128()), G.array(intGen('I128'))],
  ['Array<F32>', t.array(t.f32()), G.array(floatGen('F32'), 20, 0.03)],
  ['Array<String>', t.array(t.string()), G.array(G.string())],
  ['Array<Bool>', t.array(t.bool()), G.array(G.bool(), 16)],
  ['Array<F64>', t.array(t.f64()), G.array(floatGen('F64'))],
  ['Array<Array<U32>>', t.array(t.array(t.u32())), G.array(G.array(intGen('U32')), 5)],
  ['Array<Array<String>>', t.array(t.array(t.string())), G.array(G.array(G.string(), 4), 4)],
  ['Array<Bytes>', t.array(t.byteArray()), G.array(G.bytes(), 5)],
  ['Array<Array<Array<I8>>>', t.array(t.array(t.array(t.i8()))), G.array(G.array(G.array(intGen('I8'), 4), 3), 3)],
  ['Array<Option<I32>>', t.array(t.option(t.i32())), G.array(G.option(intGen('I32')))],
  ['Array<Vec2>', t.array(Vec2), G.array(vec2(), 8, 0.03)],
  ['Array<Identity>', t.array(t.identity()), G.array(G.identity(), 4)],
  ['Array<Stamp>', t.array(Stamp), G.array(stamp(), 4)],
  ['Option<U8>', t.option(t.u8()), G.option(U8())],
  ['Option<String>', t.option(t.string()), G.option(G.string())],
  ['Option<I128>', t.option(t.i128()), G.option(intGen('I128'))],
  ['Option<Bytes>', t.option(t.byteArray()), G.option(G.bytes())],
  ['Option<Array<U16>>', t.option(t.array(t.u16())), G.option(G.array(intGen('U16')))],
  ['Option<Option<U8>>', t.option(t.option(t.u8())), G.nestedOption()],
  ['Option<Vec2>', t.option(Vec2), G.option(vec2())],
  ['Product Vec2 (fixed size)', Vec2, vec2()],
  [
    'Product Fixed (all primitives)',
    t.object('Fixed', {
      a: t.bool(), b: t.i8(), c: t.u16(), d: t.i32(), e: t.u64(), f: t.i64(), g: t.f32(), h: t.f64(),
      i: t.u128(), j: t.i256(),
    }),
    G.product([
      ['a', G.bool()], ['b', intGen('I8')], ['c', intGen('U16')], ['d', intGen('I32')], ['e', intGen('U64')],
      ['f', intGen('I64')], ['g', floatGen('F32')], ['h', floatGen('F64')], ['i', intGen('U128')], ['j', intGen('I256')],
    ]),
  ],
  ['Product Stamp (fixed size, specials)', Stamp, stamp()],
  [
    'Product Player (nested, options, specials)',
    t.object('Player', {
      id: t.u64(),
      name: t.string(),
      pos: Vec2,
      hp: t.i16(),
      alive: t.bool(),
      nick: t.option(t.string()),
      target: t.option(Vec2),
      bounds: Rect,
      color: Color,
      tags: t.array(t.string()),
      inventory: t.array(t.object('Item', { kind: t.u16(), count: t.u32(), meta: t.option(t.byteArray()) })),
      owner: t.identity(),
      conn: t.option(t.connectionId()),
      joined: t.timestamp(),
      cooldown: t.timeDuration(),
      data: t.byteArray(),
    }),
    G.product([
      ['id', intGen('U64')],
      ['name', G.string()],
      ['pos', vec2()],
      ['hp', intGen('I16')],
      ['alive', G.bool()],
      ['nick', G.option(G.string())],
      ['target', G.option(vec2())],
      ['bounds', rect()],
      ['color', color()],
      ['tags', G.array(G.string(), 4)],
      [
        'inventory',
        G.array(G.product([['kind', intGen('U16')], ['count', intGen('U32')], ['meta', G.option(G.bytes())]]), 4),
      ],
      ['owner', G.identity()],
      ['conn', G.option(G.connectionId())],
      ['joined', G.timestamp()],
      ['cooldown', G.timeDuration()],
      ['data', G.bytes()],
    ]),
  ],
  ['Product Unit (no fields)', t.unit(), { edges: [{ ts: {}, json: [] }], gen: () => ({ ts: {}, json: [] }) }],
  ['Enum Color (unit variants)', Color, color()],
  ['Enum Wide (256 unit variants)', Wide, G.sum(WIDE_NAMES.map(n => [n, null]))],
  ['Sum Shape (payloads)', Shape, shape()],
  ['Identity', t.identity(), G.identity()],
  ['ConnectionId', t.connectionId(), G.connectionId()],
  ['Timestamp', t.timestamp(), G.timestamp()],
  ['TimeDuration', t.timeDuration(), G.timeDuration()],
  ['Uuid', t.uuid(), G.uuid()],
  ['ScheduleAt', t.scheduleAt(), G.scheduleAt()],
  ['Result<U32,U32>', t.result(t.u32(), t.u32()), G.result(intGen('U32'), intGen('U32'))],
  ['Result<String,String>', t.result(t.string(), t.string()), G.result(G.string(), G.string())],
];
// (Results with different ok/err types are left out: SDK 2.10.1 serializes `err` payloads with the `ok` type.)

const VALUES_PER_TYPE = 250;

function valueRecords(rng) {
  const records = [];
  for (const [name, builder, g] of TYPES) {
    const ty = builder.algebraicType;
    const ser = AlgebraicType.makeSerializer(ty);
    const de = AlgebraicType.makeDeserializer(ty);
    const items = [...g.edges];
    while (items.length < VALUES_PER_TYPE) items.push(g.gen(rng));
    const values = items.map(v => {
      let bytes;
      if (v.ser) {
        bytes = v.ser();
      } else {
        const w = new BinaryWriter(64);
        ser(w, v.ts);
        bytes = w.getBuffer().slice();
        // sanity: the SDK reads back what it wrote, all of it
        const r = new BinaryReader(bytes);
        de(r);
        if (r.remaining !== 0) throw new Error(`${name}: SDK left ${r.remaining} bytes unread`);
      }
      const out = { json: v.json, hex: hex(bytes) };
      if (v.display !== undefined) out.display = v.display;
      return out;
    });
    records.push({ name, type: typeToJson(ty), values });
  }
  return records;
}

// ---- protocol messages ------------------------------------------------------------------------------------
// desc -> SDK value
const big = s => BigInt(s);
const tsRowList = d => ({
  sizeHint:
    'FixedSize' in d.size_hint
      ? { tag: 'FixedSize', value: d.size_hint.FixedSize }
      : { tag: 'RowOffsets', value: d.size_hint.RowOffsets.map(big) },
  rowsData: fromHex(d.rows_data),
});
const tsQueryRows = d => ({ tables: d.tables.map(x => ({ table: x.table, rows: tsRowList(x.rows) })) });
const tsTableUpdateRows = d =>
  'PersistentTable' in d
    ? { tag: 'PersistentTable', value: { inserts: tsRowList(d.PersistentTable.inserts), deletes: tsRowList(d.PersistentTable.deletes) } }
    : { tag: 'EventTable', value: { events: tsRowList(d.EventTable.events) } };
const tsTransactionUpdate = d => ({
  querySets: d.query_sets.map(qs => ({
    querySetId: { id: qs.query_set_id },
    tables: qs.tables.map(tu => ({ tableName: tu.table_name, rows: tu.rows.map(tsTableUpdateRows) })),
  })),
});

function tsClientMessage(d) {
  switch (d.type) {
    case 'Subscribe':
      return { tag: 'Subscribe', value: { requestId: d.request_id, querySetId: { id: d.query_set_id }, queryStrings: d.query_strings } };
    case 'Unsubscribe':
      return { tag: 'Unsubscribe', value: { requestId: d.request_id, querySetId: { id: d.query_set_id }, flags: { tag: d.flags, value: {} } } };
    case 'OneOffQuery':
      return { tag: 'OneOffQuery', value: { requestId: d.request_id, queryString: d.query_string } };
    case 'CallReducer':
      return { tag: 'CallReducer', value: { requestId: d.request_id, flags: d.flags, reducer: d.reducer, args: fromHex(d.args) } };
    case 'CallProcedure':
      return { tag: 'CallProcedure', value: { requestId: d.request_id, flags: d.flags, procedure: d.procedure, args: fromHex(d.args) } };
  }
  throw new Error(`unknown client message ${d.type}`);
}

function tsServerMessage(d) {
  switch (d.type) {
    case 'InitialConnection':
      return {
        tag: 'InitialConnection',
        value: { identity: Identity.fromString(d.identity), connectionId: ConnectionId.fromString(d.connection_id), token: d.token },
      };
    case 'SubscribeApplied':
      return { tag: 'SubscribeApplied', value: { requestId: d.request_id, querySetId: { id: d.query_set_id }, rows: tsQueryRows(d.rows) } };
    case 'UnsubscribeApplied':
      return {
        tag: 'UnsubscribeApplied',
        value: { requestId: d.request_id, querySetId: { id: d.query_set_id }, rows: d.rows === null ? undefined : tsQueryRows(d.rows) },
      };
    case 'SubscriptionError':
      return {
        tag: 'SubscriptionError',
        value: { requestId: d.request_id === null ? undefined : d.request_id, querySetId: { id: d.query_set_id }, error: d.error },
      };
    case 'TransactionUpdate':
      return { tag: 'TransactionUpdate', value: tsTransactionUpdate(d) };
    case 'OneOffQueryResult':
      if (!('ok' in d.result)) throw new Error('the SDK cannot serialize OneOffQueryResult err (see below)');
      return { tag: 'OneOffQueryResult', value: { requestId: d.request_id, result: { ok: tsQueryRows(d.result.ok) } } };
    case 'ReducerResult': {
      const r = d.result;
      let result;
      if ('Ok' in r) result = { tag: 'Ok', value: { retValue: fromHex(r.Ok.ret_value), transactionUpdate: tsTransactionUpdate(r.Ok.transaction_update) } };
      else if ('OkEmpty' in r) result = { tag: 'OkEmpty', value: {} };
      else if ('Err' in r) result = { tag: 'Err', value: fromHex(r.Err) };
      else result = { tag: 'InternalError', value: r.InternalError };
      return { tag: 'ReducerResult', value: { requestId: d.request_id, timestamp: new Timestamp(big(d.timestamp)), result } };
    }
    case 'ProcedureResult': {
      const s = d.status;
      const status = 'Returned' in s ? { tag: 'Returned', value: fromHex(s.Returned) } : { tag: 'InternalError', value: s.InternalError };
      return {
        tag: 'ProcedureResult',
        value: {
          status,
          timestamp: new Timestamp(big(d.timestamp)),
          totalHostExecutionDuration: new TimeDuration(big(d.total_host_execution_duration)),
          requestId: d.request_id,
        },
      };
    }
  }
  throw new Error(`unknown server message ${d.type}`);
}

// random descs
const u32 = rng => (rng.chance(0.1) ? rng.pick([0, 1, 0xffffffff, 0x7fffffff, 0x80000000]) : rng.chance(0.5) ? rng.int(0, 1000) : rng.u32());
const i64s = rng => (rng.chance(0.1) ? rng.pick(I64_EDGES) : rng.chance(0.7) ? 1700000000000000n + rng.bits(44) : randomInt(rng, 'I64')).toString();
const hexBig = (rng, bits) => rng.bits(bits).toString(16).padStart(bits / 4, '0');
const TABLES = ['player', 'person', 'message', 'entity', 'circle', 'food', 'config', 'logged_out_player', 'Ünïcødé_表'];
const SQLS = ['SELECT * FROM player', 'SELECT * FROM person WHERE age > 30', 'SELECT p.* FROM player p JOIN entity e ON p.id = e.id',
  'SELECT * FROM "Ünïcødé_表"', ''];

function randomRows(rng) {
  // rows like a server would send: FixedSize when all rows have the same non-zero size, else RowOffsets
  const n = rng.chance(0.15) ? 0 : rng.int(1, 6);
  if (n > 0 && rng.chance(0.5)) {
    const size = rng.pick([1, 4, 12, 37, rng.int(1, 300)]);
    let data = '';
    for (let i = 0; i < n; i++) data += hex(randomBytesExact(rng, size));
    return { size_hint: { FixedSize: size }, rows_data: data };
  }
  const offsets = [];
  let data = '';
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const row = randomBytesExact(rng, rng.int(0, 40));
    offsets.push(pos.toString());
    pos += row.length;
    data += hex(row);
  }
  return { size_hint: { RowOffsets: offsets }, rows_data: data };
}
function randomBytesExact(rng, n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.u32() & 0xff;
  return b;
}
const list = (rng, lo, hi, f) => Array.from({ length: rng.int(lo, hi) }, () => f(rng));
const randomQueryRows = rng => ({ tables: list(rng, 0, 3, r => ({ table: r.pick(TABLES), rows: randomRows(r) })) });
const randomTableUpdateRows = rng =>
  rng.chance(0.6)
    ? { PersistentTable: { inserts: randomRows(rng), deletes: randomRows(rng) } }
    : { EventTable: { events: randomRows(rng) } };
const randomTransactionUpdate = (rng, minSets = 0) => ({
  query_sets: list(rng, minSets, 3, r => ({
    query_set_id: u32(r),
    tables: list(r, 0, 3, r2 => ({ table_name: r2.pick(TABLES), rows: list(r2, 0, 3, randomTableUpdateRows) })),
  })),
});
const args = rng => hex(rng.chance(0.2) ? new Uint8Array(0) : randomBytes(rng, 30));

const CLIENT_CASES = {
  Subscribe: rng => ({ type: 'Subscribe', request_id: u32(rng), query_set_id: u32(rng), query_strings: list(rng, 0, 4, r => (r.chance(0.5) ? r.pick(SQLS) : randomString(r))) }),
  'Unsubscribe/Default': rng => ({ type: 'Unsubscribe', request_id: u32(rng), query_set_id: u32(rng), flags: 'Default' }),
  'Unsubscribe/SendDroppedRows': rng => ({ type: 'Unsubscribe', request_id: u32(rng), query_set_id: u32(rng), flags: 'SendDroppedRows' }),
  OneOffQuery: rng => ({ type: 'OneOffQuery', request_id: u32(rng), query_string: rng.chance(0.5) ? rng.pick(SQLS) : randomString(rng) }),
  CallReducer: rng => ({ type: 'CallReducer', request_id: u32(rng), flags: rng.chance(0.8) ? 0 : rng.int(0, 255), reducer: randomString(rng), args: args(rng) }),
  CallProcedure: rng => ({ type: 'CallProcedure', request_id: u32(rng), flags: rng.chance(0.8) ? 0 : rng.int(0, 255), procedure: randomString(rng), args: args(rng) }),
};

const SERVER_CASES = {
  InitialConnection: rng => ({ type: 'InitialConnection', identity: hexBig(rng, 256), connection_id: hexBig(rng, 128), token: randomString(rng, 300) }),
  SubscribeApplied: rng => ({ type: 'SubscribeApplied', request_id: u32(rng), query_set_id: u32(rng), rows: randomQueryRows(rng) }),
  'UnsubscribeApplied/some': rng => ({ type: 'UnsubscribeApplied', request_id: u32(rng), query_set_id: u32(rng), rows: randomQueryRows(rng) }),
  'UnsubscribeApplied/none': rng => ({ type: 'UnsubscribeApplied', request_id: u32(rng), query_set_id: u32(rng), rows: null }),
  'SubscriptionError/some': rng => ({ type: 'SubscriptionError', request_id: u32(rng), query_set_id: u32(rng), error: randomString(rng, 80) }),
  'SubscriptionError/none': rng => ({ type: 'SubscriptionError', request_id: null, query_set_id: u32(rng), error: randomString(rng, 80) }),
  TransactionUpdate: rng => ({ type: 'TransactionUpdate', ...randomTransactionUpdate(rng) }),
  'OneOffQueryResult/ok': rng => ({ type: 'OneOffQueryResult', request_id: u32(rng), result: { ok: randomQueryRows(rng) } }),
  // OneOffQueryResult with `err` is not generated here: SDK 2.10.1 serializes the `err` payload (a string)
  // with the `ok` serializer (QueryRows) and throws (src/lib/algebraic_type.ts, makeSerializer of ok/err
  // sums). See oneOffQueryErrRecords below for a workaround that still uses only SDK code.
  'ReducerResult/Ok': rng => ({
    type: 'ReducerResult', request_id: u32(rng), timestamp: i64s(rng),
    result: { Ok: { ret_value: rng.chance(0.5) ? '' : args(rng), transaction_update: randomTransactionUpdate(rng) } },
  }),
  'ReducerResult/OkEmpty': rng => ({ type: 'ReducerResult', request_id: u32(rng), timestamp: i64s(rng), result: { OkEmpty: [] } }),
  'ReducerResult/Err': rng => {
    const msg = Buffer.from(randomString(rng, 60), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(msg.length);
    const err = rng.chance(0.7) ? hex(Buffer.concat([len, msg])) : args(rng); // a BSATN string, or any bytes
    return { type: 'ReducerResult', request_id: u32(rng), timestamp: i64s(rng), result: { Err: err } };
  },
  'ReducerResult/InternalError': rng => ({ type: 'ReducerResult', request_id: u32(rng), timestamp: i64s(rng), result: { InternalError: randomString(rng, 80) } }),
  'ProcedureResult/Returned': rng => ({
    type: 'ProcedureResult', status: { Returned: args(rng) }, timestamp: i64s(rng),
    total_host_execution_duration: (rng.chance(0.8) ? BigInt(rng.int(0, 5000000)) : randomInt(rng, 'I64')).toString(), request_id: u32(rng),
  }),
  'ProcedureResult/InternalError': rng => ({
    type: 'ProcedureResult', status: { InternalError: randomString(rng, 80) }, timestamp: i64s(rng),
    total_host_execution_duration: BigInt(rng.int(0, 5000000)).toString(), request_id: u32(rng),
  }),
};

const MESSAGES_PER_CASE = 30;

function messageRecords(rng, cases, sum, toTs) {
  const out = [];
  for (const [name, make] of Object.entries(cases)) {
    for (let i = 0; i < MESSAGES_PER_CASE; i++) {
      const desc = make(rng);
      const w = new BinaryWriter(256);
      sum.serialize(w, toTs(desc));
      const bytes = w.getBuffer().slice();
      const r = new BinaryReader(bytes);
      sum.deserialize(r);
      if (r.remaining !== 0) throw new Error(`${name}: SDK left ${r.remaining} bytes unread`);
      out.push({ case: name, desc, hex: hex(bytes) });
    }
  }
  return out;
}

// TransactionUpdate coverage: make sure every row-list shape appears (random draws could in theory miss one)
function ensureTransactionUpdateCoverage(rng, records) {
  const rl = (hint, data) => ({ size_hint: hint, rows_data: data });
  const desc = {
    type: 'TransactionUpdate',
    query_sets: [
      {
        query_set_id: 7,
        tables: [
          {
            table_name: 'player',
            rows: [
              { PersistentTable: { inserts: rl({ FixedSize: 4 }, '0100000002000000'), deletes: rl({ RowOffsets: ['0', '3'] }, '616263646566') } },
              { EventTable: { events: rl({ FixedSize: 2 }, 'abcd') } },
              { EventTable: { events: rl({ RowOffsets: [] }, '') } },
            ],
          },
        ],
      },
      { query_set_id: 0xffffffff, tables: [] },
    ],
  };
  const w = new BinaryWriter(64);
  ServerMessage.serialize(w, tsServerMessage(desc));
  records.push({ case: 'TransactionUpdate', desc, hex: hex(w.getBuffer()) });
}

// OneOffQueryResult/err, worked around: the SDK's writer for the message prefix and the SDK's generic sum
// serializer for `result` (a sum that differs from Result<QueryRows, string> only in its variant names, which
// BSATN does not encode). The bytes are then checked with the SDK's own ServerMessage *decoder*, which reads
// results correctly.
const ONE_OFF_RESULT_TYPE = ServerMessage.variants.OneOffQueryResult.elements.result.algebraicType; // Result<QueryRows, string>
const RESULT_ALT = AlgebraicType.Sum({
  variants: ONE_OFF_RESULT_TYPE.value.variants.map(v => ({ name: `${v.name}_`, algebraicType: v.algebraicType })),
});
function oneOffQueryErrRecords(rng) {
  const out = [];
  for (let i = 0; i < MESSAGES_PER_CASE; i++) {
    const desc = { type: 'OneOffQueryResult', request_id: u32(rng), result: { err: randomString(rng, 80) } };
    const w = new BinaryWriter(64);
    w.writeU8(5); // ServerMessage::OneOffQueryResult
    w.writeU32(desc.request_id);
    AlgebraicType.makeSerializer(RESULT_ALT)(w, { tag: 'err_', value: desc.result.err });
    const bytes = w.getBuffer().slice();
    const r = new BinaryReader(bytes);
    const back = ServerMessage.deserialize(r);
    // (the SDK's readString drops a leading U+FEFF: `new TextDecoder('utf-8')` strips a BOM by default)
    const expectedErr = desc.result.err.replace(/^\uFEFF/, '');
    if (r.remaining !== 0 || back.tag !== 'OneOffQueryResult' || back.value.requestId !== desc.request_id || back.value.result.err !== expectedErr) {
      throw new Error(`OneOffQueryResult/err workaround bytes do not decode as intended: ${JSON.stringify(back)}`);
    }
    out.push({ case: 'OneOffQueryResult/err (workaround)', desc, hex: hex(bytes) });
  }
  return out;
}

// ---- v3 frames -------------------------------------------------------------------------------------------
function frames(rng, client, server) {
  const pickSome = (recs, n) => Array.from({ length: n }, () => rng.pick(recs));
  const clientPicked = pickSome(client, 6);
  const writer = new BinaryWriter(1024);
  const clientFrame = encodeClientMessagesV3(writer, clientPicked.map(m => fromHex(m.hex))).slice();

  const serverPicked = pickSome(server, 6);
  const serverPayload = Buffer.concat(serverPicked.map(m => Buffer.from(m.hex, 'hex')));
  // sanity: the SDK's own v3 reader splits the concatenation into as many messages
  const count = forEachServerMessageV3(new BinaryReader(new Uint8Array(0)), new Uint8Array(serverPayload), () => {});
  if (count !== serverPicked.length) throw new Error(`forEachServerMessageV3 found ${count} messages`);
  const serverFrame = Buffer.concat([Buffer.from([0]), serverPayload]);
  const gzipFrame = Buffer.concat([Buffer.from([2]), zlib.gzipSync(serverPayload)]);

  // one big message (over the 1024-byte compression threshold), gzip-compressed, as on a v2 connection
  const bigDesc = {
    type: 'SubscribeApplied',
    request_id: 1,
    query_set_id: 0,
    rows: { tables: [{ table: 'player', rows: { size_hint: { FixedSize: 16 }, rows_data: hex(randomBytesExact(rng, 16 * 200)) } }] },
  };
  const w = new BinaryWriter(4096);
  ServerMessage.serialize(w, tsServerMessage(bigDesc));
  const bigMsg = Buffer.from(w.getBuffer());
  const gzipSingle = Buffer.concat([Buffer.from([2]), zlib.gzipSync(bigMsg)]);

  return {
    client_v3: { messages: clientPicked.map(m => m.desc), hex: hex(clientFrame) },
    server_v3: { messages: serverPicked.map(m => m.desc), hex: hex(serverFrame) },
    server_v3_gzip: { messages: serverPicked.map(m => m.desc), hex: hex(gzipFrame) },
    server_v2_gzip: { messages: [bigDesc], hex: hex(gzipSingle), message_hex: hex(bigMsg) },
  };
}

// ---- main ------------------------------------------------------------------------------------------------
const seedArg = process.argv[2] ?? '1';
if (!/^\d+$/.test(seedArg)) {
  process.stderr.write(`usage: node ts_vectors.mjs <seed: a non-negative integer>, got ${seedArg}\n`);
  process.exit(2);
}
const rng = makeRng(seedArg);
const values = valueRecords(rng);
const clientMessages = messageRecords(rng, CLIENT_CASES, ClientMessage, tsClientMessage);
const serverMessages = messageRecords(rng, SERVER_CASES, ServerMessage, tsServerMessage);
ensureTransactionUpdateCoverage(rng, serverMessages);
serverMessages.push(...oneOffQueryErrRecords(rng));

process.stdout.write(
  toJsonText({
    sdk_version: SDK_VERSION,
    seed: seedArg,
    values,
    client_messages: clientMessages,
    server_messages: serverMessages,
    frames: frames(rng, clientMessages, serverMessages),
  })
);
