#!/usr/bin/env node
// Loads waystream's live page in headless Chromium and checks that it shows the pipeline.
//
//   node tests/browser/live_page.mjs <base-url> [--expect-generation module=N]...
//                                    [--screenshot path.png] [--timeout-ms N]
//
// It waits until points are drawn on the map (window.waystream.pointsDrawn > 0) and the
// module table has rows (tr[data-module]); then, for each --expect-generation, until that
// module's row shows that generation (tr[data-module=M][data-generation=N], and
// window.waystream.modules[M].generation); then saves the screenshot if asked. It fails if
// the page throws, asks for anything outside <base-url>'s origin, breaks its Content
// Security Policy, or gets an HTTP error for one of its files or its state.
//
// Prints one line of JSON on stdout: {"ok":true,"pointsDrawn":…,"modules":{…},…} and exits
// 0, or {"ok":false,"error":"…","stage":"…",…} (and the reason on stderr) and exits 1.
// Exit 2: bad arguments. The whole run, browser start included, is bounded by --timeout-ms
// (default 30000).
//
// Chromium: Debian's /usr/bin/chromium (apt-get install -y chromium), or $WAYSTREAM_CHROMIUM.
// playwright-core drives it; it downloads no browser.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const USAGE = 'usage: node live_page.mjs <base-url> [--expect-generation module=N]... ' +
  '[--screenshot path.png] [--timeout-ms N]';

// Launch options from the machine notes: as root, with the network closed to all but
// loopback, Chromium needs these to start quietly and quickly.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function parseArgs(argv) {
  const o = { base: null, expect: [], screenshot: null, timeoutMs: 30000 };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v = null;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq); }
    const value = () => {
      if (v !== null) return v;
      if (i + 1 >= argv.length) throw new Error(a + ' needs a value');
      return argv[++i];
    };
    if (a === '--expect-generation') {
      const m = /^(.+)=(\d+)$/.exec(value());
      if (!m) throw new Error('--expect-generation takes module=N');
      o.expect.push({ module: m[1], generation: Number(m[2]) });
    } else if (a === '--screenshot') {
      o.screenshot = value();
    } else if (a === '--timeout-ms') {
      o.timeoutMs = Number(value());
      if (!Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0) throw new Error('--timeout-ms takes a positive number');
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    } else if (a.startsWith('--')) {
      throw new Error('unknown option ' + a);
    } else if (o.base === null) {
      o.base = a;
    } else {
      throw new Error('unexpected argument ' + a);
    }
  }
  if (o.base === null) throw new Error('missing <base-url>');
  const u = new URL(o.base);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('<base-url> must be http(s)');
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  o.base = u;
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write('live_page: ' + e.message + '\n' + USAGE + '\n');
  process.exit(2);
}

const t0 = Date.now();
const deadline = t0 + opts.timeoutMs;
const remaining = () => Math.max(1, deadline - Date.now());
let stage = 'start';
let context = null;
let page = null;
let userDataDir = null;
let finished = false;

const problems = { pageErrors: [], foreign: [], httpErrors: [], csp: [], consoleErrors: [] };

function emit(result, code) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(result) + '\n');
  if (!result.ok) process.stderr.write('live_page: FAILED (' + result.stage + '): ' + result.error + '\n');
  process.exitCode = code;
}

// If closing the browser hangs, still exit (the Rust test must not wait forever).
const hardStop = setTimeout(() => {
  emit({ ok: false, stage, error: 'hard timeout: the run did not end ' + (opts.timeoutMs + 15000) + ' ms after it started' }, 1);
  cleanupDir();
  process.exit(1);
}, opts.timeoutMs + 15000);
hardStop.unref();

function cleanupDir() {
  if (userDataDir) {
    try { fs.rmSync(userDataDir, { recursive: true, force: true }); } catch { /* best effort */ }
    userDataDir = null;
  }
}

async function pageState() {
  if (!page) return null;
  try {
    return await page.evaluate(() => {
      const w = window.waystream;
      return {
        waystream: w ? JSON.parse(JSON.stringify(w)) : null,
        rows: Array.from(document.querySelectorAll('tr[data-module]'))
          .map((tr) => ({ module: tr.dataset.module, generation: tr.dataset.generation })),
        conn: document.getElementById('conn') ? document.getElementById('conn').dataset.state : null,
        csp: window.__wsCsp || [],
      };
    });
  } catch (e) {
    return { unavailable: String(e.message || e).split('\n')[0] };
  }
}

function checkProblems() {
  if (problems.pageErrors.length) throw new Error('the page threw: ' + problems.pageErrors.slice(0, 3).join(' | '));
  if (problems.foreign.length) throw new Error('the page asked for something outside ' + opts.base.origin + ': ' + problems.foreign.slice(0, 5).join(', '));
  if (problems.httpErrors.length) throw new Error('HTTP errors: ' + problems.httpErrors.slice(0, 5).join(', '));
  if (problems.csp.length) throw new Error('Content Security Policy violations: ' + problems.csp.slice(0, 5).join(', '));
}

/** What the page shows, in a few words, for a failure message. */
async function shows() {
  const st = await pageState();
  if (!st || !st.waystream) return 'the page has no window.waystream';
  const w = st.waystream;
  const rows = st.rows.map((r) => r.module + ' g' + r.generation).join(', ') || 'no module row';
  return 'the page shows pointsDrawn=' + w.pointsDrawn + ', pointsReceived=' + w.pointsReceived +
    ', connected=' + w.connected + ', modules: ' + rows +
    (w.lastError ? ', last error: ' + w.lastError : '');
}

async function waitFor(what, fn, arg) {
  stage = what;
  try {
    await page.waitForFunction(fn, arg, { timeout: remaining(), polling: 100 });
  } catch (e) {
    if (/Timeout/i.test(String(e.message))) {
      throw new Error('timed out after ' + opts.timeoutMs + ' ms (in all) waiting for ' + what + '; ' + await shows());
    }
    throw e;
  }
  checkProblems();
}

async function run() {
  const executablePath = process.env.WAYSTREAM_CHROMIUM || '/usr/bin/chromium';
  stage = 'launch';
  if (!fs.existsSync(executablePath)) {
    throw new Error('no Chromium at ' + executablePath + ' (apt-get install -y chromium, or set WAYSTREAM_CHROMIUM)');
  }
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waystream-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    timeout: remaining(),
  });
  page = context.pages()[0] || await context.newPage();

  page.on('pageerror', (e) => problems.pageErrors.push(String(e.message || e).split('\n')[0]));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text().slice(0, 300);
    problems.consoleErrors.push(text);
    if (/Content Security Policy/i.test(text)) problems.csp.push(text);
  });
  context.on('request', (r) => {
    const u = new URL(r.url());
    if (!/^(https?|wss?):$/.test(u.protocol)) return; // data:, blob:, about:, chrome-error:
    if (u.origin !== opts.base.origin.replace(/^http/, u.protocol.startsWith('ws') ? 'ws' : 'http')) {
      problems.foreign.push(u.href);
    }
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.httpErrors.push(r.status() + ' ' + r.url());
  });
  await page.addInitScript(() => {
    window.__wsCsp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__wsCsp.push(e.violatedDirective + ' ' + (e.blockedURI || '(inline)'));
    });
  });

  stage = 'load';
  // A host that is still starting refuses the connection: try again until the deadline.
  let resp = null;
  for (;;) {
    try {
      resp = await page.goto(opts.base.href, { waitUntil: 'load', timeout: remaining() });
      break;
    } catch (e) {
      if (!/ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE/.test(String(e.message)) || remaining() < 300) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  if (!resp || !resp.ok()) throw new Error('GET ' + opts.base.href + ' answered ' + (resp ? resp.status() : 'nothing'));
  const ctype = resp.headers()['content-type'] || '';
  if (!/^text\/html/i.test(ctype)) throw new Error('GET ' + opts.base.href + ' has Content-Type ' + JSON.stringify(ctype) + ', not text/html');

  await waitFor('points drawn on the map and rows in the module table', () => {
    const w = window.waystream;
    return !!w && w.pointsDrawn > 0 && document.querySelectorAll('#modules tr[data-module]').length > 0;
  });

  for (const { module, generation } of opts.expect) {
    await waitFor('module ' + module + ' at generation ' + generation, ([m, n]) => {
      const tr = document.querySelector('tr[data-module="' + CSS.escape(m) + '"]');
      const w = window.waystream;
      return !!tr && tr.dataset.generation === String(n) &&
        !!w && !!w.modules[m] && String(w.modules[m].generation) === String(n);
    }, [module, generation]);
  }

  const csp = await page.evaluate(() => window.__wsCsp || []);
  problems.csp.push(...csp);
  checkProblems();

  if (opts.screenshot) {
    stage = 'screenshot';
    // one more render, so the map holds the newest points and the legend its counts
    await page.waitForTimeout(Math.min(1100, Math.max(1, remaining() - 2000)));
    fs.mkdirSync(path.dirname(path.resolve(opts.screenshot)), { recursive: true });
    await page.screenshot({ path: opts.screenshot, timeout: remaining() });
  }

  stage = 'report';
  const st = await pageState();
  const w = (st && st.waystream) || {};
  return {
    ok: true,
    url: opts.base.href,
    pointsDrawn: w.pointsDrawn,
    pointsReceived: w.pointsReceived,
    modules: w.modules,
    reloads: (w.reloads || []).map((r) => ({ module: r.module, outcome: r.outcome, generation: r.generation })),
    deadLetters: w.deadLetters,
    zones: w.zones,
    connected: w.connected,
    consoleErrors: problems.consoleErrors.length,
    screenshot: opts.screenshot ? path.resolve(opts.screenshot) : null,
    elapsedMs: Date.now() - t0,
  };
}

async function close() {
  if (context) {
    const c = context;
    context = null;
    let timer;
    await Promise.race([
      c.close().catch(() => {}),
      new Promise((r) => { timer = setTimeout(r, 5000); }),
    ]);
    clearTimeout(timer);
  }
  cleanupDir();
}

try {
  const result = await run();
  await close();
  emit(result, 0);
} catch (e) {
  const st = await pageState();
  await close();
  emit({
    ok: false,
    stage,
    error: String((e && e.message) || e).split('\n')[0],
    url: opts.base.href,
    page: st,
    problems,
    elapsedMs: Date.now() - t0,
  }, 1);
}
clearTimeout(hardStop);
