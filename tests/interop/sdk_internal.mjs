// What ts_vectors.mjs, ts_chat.mjs and ts_chat_v1.mjs share: where an installed SpacetimeDB TypeScript SDK is,
// its version, and a copy of its bundle that also exports some of its internals. `pkg` is the directory in
// node_modules: `spacetimedb` (2.x) unless told otherwise (`spacetimedb-v1`, the alias of 1.12.0).
//
// The SDK does not export everything the scripts need (ClientMessage, ServerMessage, ...). importInternals()
// copies node_modules/<pkg>/dist/index.mjs to a gitignored sibling file with one more export line and
// imports that copy. The copy's classes are distinct from the package's own.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const SDK_2 = 'spacetimedb';
export const SDK_1 = 'spacetimedb-v1';

const pkgDir = pkg => join(HERE, 'node_modules', pkg);
const bundle = pkg => join(pkgDir(pkg), 'dist', 'index.mjs');

/** Exit with code 3 and a hint when the SDK `pkg` (or another of `packages`) is not installed. */
export function requireInstalled(packages = [], pkg = SDK_2) {
  const missing = [bundle(pkg), ...packages.map(p => join(pkgDir(p), 'package.json'))].filter(f => !existsSync(f));
  if (missing.length) {
    process.stderr.write(`not installed (${missing.join(', ')} missing): run \`npm ci\` in tests/interop\n`);
    process.exit(3);
  }
}

/** The version of the installed SDK `pkg`. */
export function sdkVersion(pkg = SDK_2) {
  return JSON.parse(readFileSync(join(pkgDir(pkg), 'package.json'), 'utf8')).version;
}

/** Import a copy of the bundle of the SDK `pkg`, written to `HERE/fileName`, that also exports `names`. */
export async function importInternals(fileName, names, pkg = SDK_2) {
  const target = join(HERE, fileName);
  const text = readFileSync(bundle(pkg), 'utf8') + `\nexport { ${names.join(', ')} };\n`;
  let current = null;
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // not there yet
  }
  if (current !== text) {
    // write + rename, so that concurrent runs never import a half-written file
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, target);
  }
  return import(pathToFileURL(target).href);
}

/** The internals the scripts import besides the public exports: the protocol messages and v3 framing. */
export const MESSAGE_INTERNALS = ['ClientMessage', 'ServerMessage', 'encodeClientMessagesV3', 'forEachServerMessageV3'];
