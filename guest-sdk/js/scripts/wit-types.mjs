#!/usr/bin/env node
// Generates the contract's TypeScript declarations (types/wit/) from wit/waystream.wit with
// jco's type generator, so the SDK's types follow the WIT instead of a hand-written copy.
//
//   node scripts/wit-types.mjs           rewrite types/wit/
//   node scripts/wit-types.mjs --check   exit 1 when types/wit/ differs from what the WIT gives
//
// Runs where `@bytecodealliance/jco-transpile` resolves (componentize-js brings it; the
// polyglot check runs this from its npm folder). Why not `jco types`: jco 1.35 runs its type
// generator on preview2-shim 0.26, which gives a guest no preopened folder unless told, so
// `jco types` fails with "failed to read path for WIT … os error 44". Preopening `/` for the
// generator (its own copy of the shim) and calling the same function is what the CLI would do.
import { readFile, readdir, mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SDK = join(dirname(fileURLToPath(import.meta.url)), '..');
const WIT = join(SDK, 'wit', 'waystream.wit');
const OUT = join(SDK, 'types', 'wit');
const WORLD = 'transform-module';
const HEADER = '// Generated from wit/waystream.wit by scripts/wit-types.mjs (jco); do not edit.\n';

// Resolved from the working folder, where the polyglot check installs the SDK's dependencies.
const here = createRequire(join(process.cwd(), 'package.json'));
const transpileMain = here.resolve('@bytecodealliance/jco-transpile');
const shim = createRequire(transpileMain).resolve('@bytecodealliance/preview2-shim/filesystem');
const { _setPreopens } = await import(pathToFileURL(shim).href);
const { generateGuestTypes } = await import(pathToFileURL(transpileMain).href);

_setPreopens({ '/': '/' });
const generated = await generateGuestTypes(WIT, { worldName: WORLD });
const wanted = new Map(
  Object.entries(generated).map(([name, bytes]) => [name, HEADER + new TextDecoder().decode(bytes)]),
);

async function current() {
  const files = new Map();
  for (const entry of await readdir(OUT, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      files.set(relative(OUT, path), await readFile(path, 'utf8'));
    }
  }
  return files;
}

if (process.argv.includes('--check')) {
  const have = await current();
  const stale = [...new Set([...have.keys(), ...wanted.keys()])].filter((name) => have.get(name) !== wanted.get(name));
  if (stale.length > 0) {
    console.error(`types/wit/ is not what wit/waystream.wit gives (${stale.join(', ')}): run node scripts/wit-types.mjs`);
    process.exit(1);
  }
  console.log(`types/wit/: ${wanted.size} files, current`);
} else {
  await rm(OUT, { recursive: true, force: true });
  for (const [name, text] of wanted) {
    await mkdir(dirname(join(OUT, name)), { recursive: true });
    await writeFile(join(OUT, name), text);
  }
  console.log(`wrote ${wanted.size} files into ${relative(process.cwd(), OUT) || '.'}`);
}
