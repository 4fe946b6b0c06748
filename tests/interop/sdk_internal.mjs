// What ts_vectors.mjs and ts_chat.mjs share: where the installed SpacetimeDB TypeScript SDK is, its version,
// and a copy of its bundle that also exports some of its internals.
//
// The SDK does not export everything the scripts need (ClientMessage, ServerMessage, ...). importInternals()
// copies node_modules/spacetimedb/dist/index.mjs to a gitignored sibling file with one more export line and
// imports that copy. The copy's classes are distinct from the package's own.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const PKG_DIR = join(HERE, 'node_modules', 'spacetimedb');
export const BUNDLE = join(PKG_DIR, 'dist', 'index.mjs');

/** Exit with code 3 and a hint when the SDK (or another of `packages`) is not installed. */
export function requireInstalled(packages = []) {
  const missing = [BUNDLE, ...packages.map(p => join(HERE, 'node_modules', p, 'package.json'))].filter(
    f => !existsSync(f)
  );
  if (missing.length) {
    process.stderr.write(`not installed (${missing.join(', ')} missing): run \`npm ci\` in tests/interop\n`);
    process.exit(3);
  }
}

/** The version of the installed SDK. */
export function sdkVersion() {
  return JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8')).version;
}

/** Import a copy of the SDK bundle, written to `HERE/fileName`, that also exports `names`. */
export async function importInternals(fileName, names) {
  const target = join(HERE, fileName);
  const text = readFileSync(BUNDLE, 'utf8') + `\nexport { ${names.join(', ')} };\n`;
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
