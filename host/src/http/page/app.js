// waystream live page: a map of recent points coloured by speed over the geofence zones,
// the chain's modules with their versions and counters, reload events and dead-letter causes.
//
// Data: GET api/state once (and again after the event stream reconnects, or after a config
// reload), then the Server-Sent Events of api/events (points, chain, reload, dead_letter).
// Plain JavaScript, no library, nothing fetched from anywhere but the host.
//
// Tests read `window.waystream` (see the end of "State") and the DOM hooks
// `tr[data-module="NAME"][data-generation="N"]` (module rows), `path.zone[data-zone="NAME"]`
// (zones), `#reloads > li[data-outcome]`, `#dead > li[data-module]`, `#conn[data-state]`.
//
// Query parameters (optional): ?window_s=300 (the map's window, seconds, by arrival in the
// page) and ?max_points=20000 (most points kept and drawn).
'use strict';

(function () {
  // ------------------------------------------------------------------ configuration

  const params = new URLSearchParams(location.search);
  function numParam(name, dflt, min, max) {
    const v = Number(params.get(name));
    return params.has(name) && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : dflt;
  }

  /** The map shows the points that arrived in the page in the last WINDOW_MS. */
  const WINDOW_MS = numParam('window_s', 300, 5, 86400) * 1000;
  /** At most this many points are kept and drawn (the newest). */
  const MAX_POINTS = Math.round(numParam('max_points', 20000, 100, 500000));
  /** Points start fading after this fraction of the window and vanish at its end. */
  const FADE_FROM = 0.5;
  const ALPHA_LEVELS = 6;
  const MAX_RELOADS = 50;
  const MAX_DEAD = 40;
  /** How long a module row stays highlighted after its generation changed. */
  const SWAP_HIGHLIGHT_MS = 15000;
  /** A trajectory's newest point is ringed while it is younger than this. */
  const HEAD_MS = 30000;
  /** No event for this long on an open stream: shown as stalled. */
  const STALE_MS = 5000;
  const MIN_DRAW_INTERVAL_MS = 100;
  const FADE_REDRAW_MS = 500;

  const CLASSES = [
    { key: 'stopped', label: 'stopped', range: '0–1 m/s', color: '#60a5fa', shape: 'dot' },
    { key: 'walking', label: 'walking', range: '1–3 m/s', color: '#2dd4bf', shape: 'dot' },
    { key: 'cycling', label: 'cycling', range: '3–8 m/s', color: '#a3e635', shape: 'dot' },
    { key: 'driving', label: 'driving', range: '8–30 m/s', color: '#fbbf24', shape: 'dot' },
    { key: 'implausible', label: 'implausible', range: '> 30 m/s', color: '#fb7185', shape: 'diamond' },
    { key: 'unknown', label: 'no speed', range: 'null', color: '#94a3b8', shape: 'small' },
  ];
  function classOf(speed) {
    if (speed === null || speed === undefined || !Number.isFinite(speed)) return 5;
    if (speed < 1) return 0;
    if (speed < 3) return 1;
    if (speed < 8) return 2;
    if (speed <= 30) return 3;
    return 4;
  }

  const OUTCOMES = {
    activated: 'activated',
    refused: 'refused',
    rolled_back: 'rolled back',
    snapshot_failed: 'snapshot failed',
    config_applied: 'config applied',
  };

  // ------------------------------------------------------------------ helpers

  const $ = (id) => document.getElementById(id);
  const SVG_NS = 'http://www.w3.org/2000/svg';
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const nf0 = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
  function fmtInt(n) {
    return n === null || n === undefined || !Number.isFinite(+n) ? '–' : nf0.format(+n);
  }
  function fmtCompact(n) {
    if (n === null || n === undefined || !Number.isFinite(n)) return '–';
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 1 : 2) + 'G';
    if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 1 : 2) + 'M';
    if (a >= 1e4) return (n / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
    if (a >= 10 || n === 0) return nf0.format(n);
    return n.toFixed(1);
  }
  /** A count: grouped digits below 10,000, then 12.3k, 1.23M. */
  function fmtCount(n) {
    if (n === null || n === undefined || !Number.isFinite(n)) return '–';
    return Math.abs(n) < 1e4 ? nf0.format(n) : fmtCompact(n);
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
    if (ms < 1) return ms.toFixed(3);
    if (ms < 10) return ms.toFixed(2);
    if (ms < 100) return ms.toFixed(1);
    return nf0.format(ms);
  }
  function shortDigest(d) {
    const s = String(d || '');
    return s.replace(/^sha256:/, '').slice(0, 12);
  }
  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  function clock(atMs) {
    const d = new Date(atMs);
    if (!Number.isFinite(d.getTime())) return '--:--:--';
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }
  function isoOf(atMs) {
    const d = new Date(atMs);
    return Number.isFinite(d.getTime()) ? d.toISOString() : '';
  }
  function timeEl(atMs) {
    const t = el('time', null, clock(atMs));
    const iso = isoOf(atMs);
    if (iso) { t.dateTime = iso; t.title = iso; }
    return t;
  }
  function windowText() {
    const s = WINDOW_MS / 1000;
    if (s % 3600 === 0) return s / 3600 + ' h';
    if (s % 60 === 0) return s / 60 + ' min';
    return s + ' s';
  }

  // ------------------------------------------------------------------ state

  /** Points held, oldest (by arrival) first; pts[head..] are live. */
  let pts = [];
  let head = 0;
  const keys = new Set();
  let everHadPoints = false;
  let receivedSinceTick = 0;
  let rateEma = null;
  let lastTickAt = performance.now();

  const modules = new Map();   // name -> row state
  const reloads = [];          // newest first
  const reloadKeys = new Set();
  const deadAgg = new Map();   // module \n cause -> {module, cause, count, last, li}
  const deadKeys = new Set();
  let deadTotal = 0;
  let reloadTotal = 0;
  let lastChainAt = null;

  let connected = false;
  let lastMsgAt = 0;

  /** What the page shows, for tests and for a curious console. Updated in place. */
  const ws = {
    pointsDrawn: 0,        // points drawn on the map by the last render
    pointsReceived: 0,     // points taken in (stream, and state snapshots less those already held)
    modules: {},           // {name: {generation, digest}} as the chain last said
    reloads: [],           // reload events as received, newest first (at most 50)
    connected: false,      // the event stream is open
    // extras
    pointsHeld: 0,         // points in the window (drawn or off the fitted view)
    deadLetters: 0,        // sum of the dead-letter counts seen
    zones: 0,              // zone features drawn (0 when the host has none)
    windowMs: WINDOW_MS,
    maxPoints: MAX_POINTS,
    reconnects: 0,         // times the event stream opened again after an error
    errors: 0,             // events that could not be handled (bad JSON, …)
    lastError: null,
    drawMs: 0,             // how long the last render of the points took
  };
  window.waystream = ws;

  function held() { return pts.length - head; }

  function addPoint(p, now, fromSnapshot) {
    if (!p || typeof p !== 'object') return false;
    const lat = Number(p.lat);
    const lon = Number(p.lon);
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
      return false;
    }
    const speed = p.speed_mps === null || p.speed_mps === undefined ? null : Number(p.speed_mps);
    const key = p.user + '|' + p.trajectory + '|' + p.ts_ms + '|' + lat + '|' + lon;
    if (fromSnapshot && keys.has(key)) return false;
    keys.add(key);
    pts.push({
      lat, lon, speed, cls: classOf(speed), at: now, key,
      tk: p.user + '|' + p.trajectory,
      user: p.user, trajectory: p.trajectory, ts: p.ts,
      zones: Array.isArray(p.zones) ? p.zones : [],
      x: 0, y: 0, v: -1,
    });
    return true;
  }

  function takePoints(list, fromSnapshot) {
    if (!Array.isArray(list) || list.length === 0) return;
    const now = performance.now();
    // A batch larger than the cap: only its newest points can stay anyway.
    const from = Math.max(0, list.length - MAX_POINTS);
    let n = 0;
    for (let i = from; i < list.length; i++) if (addPoint(list[i], now, fromSnapshot)) n++;
    if (!fromSnapshot) n += from;
    ws.pointsReceived += n;
    if (!fromSnapshot) receivedSinceTick += n; // the rate is the stream's
    if (n > 0) everHadPoints = true;
    trim(now);
    requestDraw();
  }

  function trim(now) {
    const cutoff = now - WINDOW_MS;
    while (head < pts.length && (pts[head].at < cutoff || pts.length - head > MAX_POINTS)) {
      keys.delete(pts[head].key);
      pts[head] = null;
      head++;
    }
    if (head > 4096 && head * 2 > pts.length) {
      pts = pts.slice(head);
      head = 0;
    }
    ws.pointsHeld = held();
  }

  // ------------------------------------------------------------------ map: zones and projection

  const mapEl = $('map');
  const zonesSvg = $('zones-layer');
  const labelsSvg = $('labels-layer');
  const canvas = $('points-layer');
  const ctx = canvas.getContext('2d');
  const measureCtx = document.createElement('canvas').getContext('2d');
  const LABEL_FONT = '600 11px system-ui, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

  let zonesJson = null;      // the zones' JSON text, to notice a change
  let zoneParts = [];        // [{name, kind, rings: [[[lon, lat], …], …]}]
  let zonesBox = null;
  let zoneEls = new Map();   // name -> {paths: [], counts: [tspan…]}
  let mapW = 0;
  let mapH = 0;
  let dpr = 1;
  let view = null;           // the fitted projection
  let viewVersion = 0;
  let needFit = true;

  function setZones(fc) {
    const text = fc ? JSON.stringify(fc) : 'null';
    if (text === zonesJson) return;
    zonesJson = text;
    zoneParts = [];
    zonesBox = null;
    const features = fc && Array.isArray(fc.features) ? fc.features : [];
    for (const f of features) {
      const g = f && f.geometry;
      if (!g) continue;
      const name = String((f.properties && f.properties.name) || '(unnamed)');
      const kind = f.properties && f.properties.kind ? String(f.properties.kind) : '';
      const polys = g.type === 'Polygon' ? [g.coordinates]
        : g.type === 'MultiPolygon' ? g.coordinates : [];
      for (const rings of polys) {
        if (!Array.isArray(rings) || !rings.length) continue;
        const clean = rings.map((r) => (Array.isArray(r) ? r : [])
          .filter((c) => Array.isArray(c) && Number.isFinite(+c[0]) && Number.isFinite(+c[1]))
          .map((c) => [+c[0], +c[1]])).filter((r) => r.length >= 3);
        if (!clean.length) continue;
        zoneParts.push({ name, kind, rings: clean });
        for (const [lon, lat] of clean[0]) zonesBox = extend(zonesBox, lon, lat);
      }
    }
    ws.zones = features.length;
    needFit = true;
    view = null;
    requestDraw();
  }

  function extend(b, lon, lat) {
    if (!b) return { minLon: lon, maxLon: lon, minLat: lat, maxLat: lat };
    if (lon < b.minLon) b.minLon = lon;
    if (lon > b.maxLon) b.maxLon = lon;
    if (lat < b.minLat) b.minLat = lat;
    if (lat > b.maxLat) b.maxLat = lat;
    return b;
  }
  function union(a, b) {
    if (!a) return b ? { ...b } : null;
    if (!b) return { ...a };
    return {
      minLon: Math.min(a.minLon, b.minLon), maxLon: Math.max(a.maxLon, b.maxLon),
      minLat: Math.min(a.minLat, b.minLat), maxLat: Math.max(a.maxLat, b.maxLat),
    };
  }
  function contains(outer, inner) {
    return inner.minLon >= outer.minLon && inner.maxLon <= outer.maxLon &&
      inner.minLat >= outer.minLat && inner.maxLat <= outer.maxLat;
  }
  function area(b) { return (b.maxLon - b.minLon) * (b.maxLat - b.minLat); }

  /** The points' box without the outermost 0.5 % each way (a GPS glitch does not zoom out). */
  function pointsBox() {
    const n = held();
    if (n === 0) return null;
    if (n < 50) {
      let b = null;
      for (let i = head; i < pts.length; i++) b = extend(b, pts[i].lon, pts[i].lat);
      return b;
    }
    const lats = new Float64Array(n);
    const lons = new Float64Array(n);
    for (let i = 0; i < n; i++) { lats[i] = pts[head + i].lat; lons[i] = pts[head + i].lon; }
    lats.sort();
    lons.sort();
    const lo = Math.floor(n * 0.005);
    const hi = n - 1 - lo;
    return { minLon: lons[lo], maxLon: lons[hi], minLat: lats[lo], maxLat: lats[hi] };
  }

  function wantedBox(margin) {
    const b = union(zonesBox, pointsBox());
    if (!b) return null;
    const minSpan = 0.005;
    const cx = (b.minLon + b.maxLon) / 2;
    const cy = (b.minLat + b.maxLat) / 2;
    const hx = Math.max(b.maxLon - b.minLon, minSpan) / 2 * (1 + margin);
    const hy = Math.max(b.maxLat - b.minLat, minSpan) / 2 * (1 + margin);
    return { minLon: cx - hx, maxLon: cx + hx, minLat: cy - hy, maxLat: cy + hy };
  }

  /** Refit when the data left the view or now fills only a small part of it. */
  function maybeRefit(force) {
    if (mapW < 10 || mapH < 10) return;
    const tight = wantedBox(0.02);
    if (!tight) return;
    if (!force && view && contains(view.box, tight) && area(view.box) < 3 * area(tight)) return;
    // Points alone (no zones): leave room to grow, so a moving set does not refit each second.
    fitTo(zonesBox && contains(zonesBox, tight) ? tight : wantedBox(zonesBox ? 0.04 : 0.15));
  }

  function fitTo(b) {
    const lat0 = (b.minLat + b.maxLat) / 2;
    const c = Math.cos(lat0 * Math.PI / 180);
    const PAD = 14;
    const sx = (b.maxLon - b.minLon) * c;
    const sy = b.maxLat - b.minLat;
    const k = Math.min((mapW - 2 * PAD) / sx, (mapH - 2 * PAD) / sy);
    view = {
      box: b, c, k,
      ox: (mapW - sx * k) / 2,
      oy: (mapH - sy * k) / 2,
      minLon: b.minLon, maxLat: b.maxLat,
      version: ++viewVersion,
    };
    needFit = false;
    renderZones();
  }
  function px(lon) { return view.ox + (lon - view.minLon) * view.c * view.k; }
  function py(lat) { return view.oy + (view.maxLat - lat) * view.k; }
  function lonAt(x) { return view.minLon + (x - view.ox) / (view.c * view.k); }
  function latAt(y) { return view.maxLat - (y - view.oy) / view.k; }

  function niceStep(span, target) {
    const raw = span / target;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }
  function decimalsOf(step) { return Math.max(0, -Math.floor(Math.log10(step) + 1e-9)); }

  function renderZones() {
    zonesSvg.replaceChildren();
    labelsSvg.replaceChildren();
    zoneEls = new Map();
    if (!view) return;
    for (const s of [zonesSvg, labelsSvg]) {
      s.setAttribute('viewBox', '0 0 ' + mapW + ' ' + mapH);
      s.setAttribute('width', mapW);
      s.setAttribute('height', mapH);
    }

    // graticule
    const grid = svg('g', { class: 'graticule' });
    const lon0 = lonAt(0);
    const lon1 = lonAt(mapW);
    const lat0 = latAt(mapH);
    const lat1 = latAt(0);
    const step = niceStep(Math.max(lon1 - lon0, lat1 - lat0), 7);
    const dec = decimalsOf(step);
    for (let lon = Math.ceil(lon0 / step) * step; lon <= lon1; lon += step) {
      const x = Math.round(px(lon)) + 0.5;
      grid.appendChild(svg('line', { x1: x, y1: 0, x2: x, y2: mapH }));
      grid.appendChild(svg('text', { x: x + 3, y: mapH - 5, class: 'tick' }, lon.toFixed(dec) + '°E'));
    }
    for (let lat = Math.ceil(lat0 / step) * step; lat <= lat1; lat += step) {
      const y = Math.round(py(lat)) + 0.5;
      grid.appendChild(svg('line', { x1: 0, y1: y, x2: mapW, y2: y }));
      grid.appendChild(svg('text', { x: 4, y: y - 3, class: 'tick' }, lat.toFixed(dec) + '°N'));
    }
    zonesSvg.appendChild(grid);

    // zones, largest first so small ones stay on top
    const parts = zoneParts.map((z) => {
      let b = null;
      for (const [lon, lat] of z.rings[0]) b = extend(b, px(lon), py(lat));
      return { z, x0: b.minLon, x1: b.maxLon, y0: b.minLat, y1: b.maxLat };
    });
    parts.sort((a, b) => (b.x1 - b.x0) * (b.y1 - b.y0) - (a.x1 - a.x0) * (a.y1 - a.y0));
    const g = svg('g', { class: 'zones' });
    for (const p of parts) {
      let d = '';
      for (const ring of p.z.rings) {
        ring.forEach(([lon, lat], i) => {
          d += (i ? 'L' : 'M') + px(lon).toFixed(1) + ' ' + py(lat).toFixed(1);
        });
        d += 'Z';
      }
      const path = svg('path', { d, class: 'zone', 'fill-rule': 'evenodd', 'data-zone': p.z.name });
      if (p.z.kind) path.setAttribute('data-kind', p.z.kind);
      path.appendChild(svg('title', {}, p.z.name));
      g.appendChild(path);
      zoneEl(p.z.name).paths.push(path);
    }
    zonesSvg.appendChild(g);

    // labels, smallest zones first (they have the fewest good places), no overlaps if possible
    measureCtx.font = LABEL_FONT;
    const placed = [];
    const lg = svg('g', { class: 'labels' });
    const TH = 14;
    for (const p of parts.slice().reverse()) {
      const tw = measureCtx.measureText(p.z.name + '  0000').width + 4;
      const cx = (p.x0 + p.x1) / 2;
      const cy = (p.y0 + p.y1) / 2;
      const cands = [];
      if (p.x1 - p.x0 > tw + 10 && p.y1 - p.y0 > TH + 8) {
        cands.push([p.x0 + 5, p.y0 + 4], [p.x1 - 5 - tw, p.y0 + 4], [p.x0 + 5, p.y1 - 4 - TH],
          [p.x1 - 5 - tw, p.y1 - 4 - TH], [cx - tw / 2, cy - TH / 2]);
      }
      cands.push([cx - tw / 2, p.y0 - TH - 3], [cx - tw / 2, p.y1 + 3], [p.x1 + 4, cy - TH / 2],
        [p.x0 - 4 - tw, cy - TH / 2]);
      let best = null;
      for (const [x, y] of cands) {
        const r = { x, y, w: tw, h: TH };
        if (x < 2 || y < 2 || x + tw > mapW - 2 || y + TH > mapH - 18) continue;
        if (placed.some((q) => r.x < q.x + q.w && q.x < r.x + r.w && r.y < q.y + q.h && q.y < r.y + r.h)) continue;
        best = r;
        break;
      }
      if (!best) {
        const [x, y] = cands[0];
        best = { x: Math.max(2, Math.min(x, mapW - tw - 2)), y: Math.max(2, Math.min(y, mapH - TH - 18)), w: tw, h: TH };
      }
      placed.push(best);
      const text = svg('text', { x: best.x.toFixed(1), y: (best.y + 11).toFixed(1), class: 'zone-label', 'data-zone': p.z.name });
      text.appendChild(svg('tspan', { class: 'zone-name' }, p.z.name));
      const count = svg('tspan', { class: 'zone-count', dx: '5' }, '');
      text.appendChild(count);
      lg.appendChild(text);
      zoneEl(p.z.name).counts.push(count);
    }
    labelsSvg.appendChild(lg);

    // scale bar, bottom right
    const mPerPx = 111320 / view.k;
    const metres = niceStep(mPerPx * 110, 1);
    const len = metres / mPerPx;
    const sx = mapW - 16 - len;
    const sy = mapH - 26;
    const bar = svg('g', { class: 'scale' });
    bar.appendChild(svg('path', { d: 'M' + sx + ' ' + (sy - 4) + 'v4h' + len.toFixed(1) + 'v-4' }));
    bar.appendChild(svg('text', { x: (sx + len / 2).toFixed(1), y: sy - 7, 'text-anchor': 'middle' },
      metres >= 1000 ? metres / 1000 + ' km' : metres + ' m'));
    labelsSvg.appendChild(bar);
    lastZoneCounts = null;
    updateZoneCounts(zoneCounts);
  }
  function zoneEl(name) {
    let z = zoneEls.get(name);
    if (!z) { z = { paths: [], counts: [] }; zoneEls.set(name, z); }
    return z;
  }

  let lastZoneCounts = null;
  function updateZoneCounts(counts) {
    const sig = JSON.stringify([...counts]);
    if (sig === lastZoneCounts) return;
    lastZoneCounts = sig;
    for (const [name, z] of zoneEls) {
      const n = counts.get(name) || 0;
      for (const p of z.paths) p.classList.toggle('active', n > 0);
      for (const c of z.counts) c.textContent = n > 0 ? fmtCount(n) : '';
    }
  }

  // ------------------------------------------------------------------ map: points

  let drawPending = false;
  let lastDrawAt = 0;
  let drawTimer = null;
  function requestDraw() {
    if (drawPending) return;
    drawPending = true;
    const wait = Math.max(0, MIN_DRAW_INTERVAL_MS - (performance.now() - lastDrawAt));
    const go = () => requestAnimationFrame(draw);
    if (wait > 0) drawTimer = setTimeout(go, wait); else go();
  }

  let classCounts = new Array(CLASSES.length).fill(0);
  let zoneCounts = new Map();

  function draw() {
    drawPending = false;
    drawTimer = null;
    const now = performance.now();
    lastDrawAt = now;
    trim(now);
    if (needFit || !view) maybeRefit(true);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, mapW, mapH);
    const n = held();
    $('map-empty').hidden = n > 0;
    $('map-empty').textContent = everHadPoints
      ? 'No points in the last ' + windowText() + '.' : 'Waiting for points…';
    if (!view) { ws.pointsDrawn = 0; return; }

    const A = ALPHA_LEVELS;
    const nb = CLASSES.length * A;
    const bucketOf = new Uint16Array(n);
    const starts = new Int32Array(nb + 1);
    const cc = new Array(CLASSES.length).fill(0);
    const zc = new Map();
    const heads = new Map();
    let drawn = 0;
    for (let i = 0; i < n; i++) {
      const p = pts[head + i];
      if (p.v !== viewVersion) { p.x = px(p.lon); p.y = py(p.lat); p.v = viewVersion; }
      const age = (now - p.at) / WINDOW_MS;
      const f = age <= FADE_FROM ? 0 : (age - FADE_FROM) / (1 - FADE_FROM);
      const level = Math.min(A - 1, Math.floor(f * A));
      const b = p.cls * A + level;
      bucketOf[i] = b;
      starts[b + 1]++;
      cc[p.cls]++;
      for (const z of p.zones) zc.set(z, (zc.get(z) || 0) + 1);
      if (p.x >= -4 && p.x <= mapW + 4 && p.y >= -4 && p.y <= mapH + 4) drawn++;
      if (now - p.at < HEAD_MS) heads.set(p.tk, p);
    }
    for (let b = 0; b < nb; b++) starts[b + 1] += starts[b];
    const order = new Int32Array(n);
    const fill = starts.slice(0, nb);
    for (let i = 0; i < n; i++) order[fill[bucketOf[i]]++] = head + i;

    // oldest (faintest) level first, so the newest points are on top
    for (let level = A - 1; level >= 0; level--) {
      ctx.globalAlpha = level === 0 ? 0.95 : 0.95 - (level / (A - 1)) * 0.8;
      for (let c = 0; c < CLASSES.length; c++) {
        const b = c * A + level;
        if (starts[b] === starts[b + 1]) continue;
        const shape = CLASSES[c].shape;
        ctx.fillStyle = CLASSES[c].color;
        ctx.beginPath();
        for (let j = starts[b]; j < starts[b + 1]; j++) {
          const p = pts[order[j]];
          if (shape === 'diamond') {
            ctx.moveTo(p.x, p.y - 3.4); ctx.lineTo(p.x + 3.4, p.y);
            ctx.lineTo(p.x, p.y + 3.4); ctx.lineTo(p.x - 3.4, p.y); ctx.closePath();
          } else {
            const r = shape === 'small' ? 1.5 : 2.1;
            ctx.moveTo(p.x + r, p.y);
            ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
          }
        }
        ctx.fill();
      }
    }
    // each moving trajectory's newest point, ringed
    ctx.globalAlpha = 1;
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = '#f8fafc';
    for (const p of heads.values()) {
      ctx.beginPath();
      ctx.arc(p.x, p.y, 4.2, 0, 2 * Math.PI);
      ctx.fillStyle = CLASSES[p.cls].color;
      ctx.fill();
      ctx.stroke();
    }
    ws.pointsDrawn = drawn;
    ws.drawMs = Math.round((performance.now() - now) * 10) / 10;
    classCounts = cc;
    zoneCounts = zc;
  }

  function resize() {
    const r = mapEl.getBoundingClientRect();
    const w = Math.max(0, Math.floor(r.width));
    const h = Math.max(0, Math.floor(r.height));
    const d = window.devicePixelRatio || 1;
    if (w === mapW && h === mapH && d === dpr) return;
    mapW = w; mapH = h; dpr = d;
    canvas.width = Math.max(1, Math.round(w * d));
    canvas.height = Math.max(1, Math.round(h * d));
    canvas.style.width = w + 'px';
    canvas.style.height = h + 'px';
    needFit = true;
    requestDraw();
  }

  // tooltip: the nearest point under the pointer
  const tooltip = $('tooltip');
  mapEl.addEventListener('mousemove', (e) => {
    if (!view) return;
    const r = mapEl.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    let best = null;
    let bd = 64; // 8 px
    for (let i = pts.length - 1; i >= head; i--) {
      const p = pts[i];
      if (p.v !== viewVersion) continue;
      const d = (p.x - mx) * (p.x - mx) + (p.y - my) * (p.y - my);
      if (d < bd) { bd = d; best = p; }
    }
    if (!best) { tooltip.hidden = true; return; }
    const lines = [
      ['user', best.user + ' · ' + best.trajectory],
      ['time', best.ts || ''],
      ['speed', best.speed === null ? 'none' : best.speed.toFixed(1) + ' m/s (' + (best.speed * 3.6).toFixed(0) + ' km/h), ' + CLASSES[best.cls].label],
      ['at', best.lat.toFixed(5) + ', ' + best.lon.toFixed(5)],
      ['zones', best.zones.length ? best.zones.join(', ') : 'none'],
    ];
    tooltip.replaceChildren(...lines.map(([k, v]) => {
      const row = el('div');
      row.append(el('span', 'k', k), el('span', 'v', v));
      return row;
    }));
    tooltip.hidden = false;
    const tw = tooltip.offsetWidth;
    const th = tooltip.offsetHeight;
    let x = mx + 14;
    let y = my + 14;
    if (x + tw > mapW - 4) x = mx - tw - 14;
    if (y + th > mapH - 4) y = my - th - 14;
    tooltip.style.left = Math.max(4, x) + 'px';
    tooltip.style.top = Math.max(4, y) + 'px';
  });
  mapEl.addEventListener('mouseleave', () => { tooltip.hidden = true; });

  // legend
  const legendCounts = [];
  function buildLegend() {
    const ul = $('legend');
    ul.replaceChildren();
    CLASSES.forEach((c, i) => {
      const li = el('li');
      li.dataset.class = c.key;
      const sw = svg('svg', { width: 14, height: 14, viewBox: '0 0 14 14', 'aria-hidden': 'true', class: 'swatch' });
      if (c.shape === 'diamond') sw.appendChild(svg('path', { d: 'M7 2L12 7L7 12L2 7Z', fill: c.color }));
      else sw.appendChild(svg('circle', { cx: 7, cy: 7, r: c.shape === 'small' ? 3 : 4.5, fill: c.color }));
      const count = el('span', 'count', '0');
      legendCounts[i] = count;
      li.append(sw, el('span', 'name', c.label), el('span', 'range', c.range === 'null' ? 'speed null' : c.range), count);
      ul.appendChild(li);
    });
  }

  // ------------------------------------------------------------------ chain table

  const tbody = $('modules-body');
  function cell(cls) { return el('td', cls); }

  function createRow(name) {
    const tr = el('tr');
    tr.dataset.module = name;
    const c = {
      name: el('th', 'mod'), digest: cell('digest'), gen: cell('num gen'), rate: cell('num'),
      out: cell('num'), rej: cell('num'), traps: cell('num'), time: cell('num'),
    };
    c.name.scope = 'row';
    c.name.textContent = name;
    const code = el('code');
    c.digest.appendChild(code);
    c.digestCode = code;
    tr.append(c.name, c.digest, c.gen, c.rate, c.out, c.rej, c.traps, c.time);
    return { name, row: tr, cells: c, last: null, generation: null, digest: null, rate: null,
      msPerBatch: null, usPerPoint: null, swappedAt: null, prevGen: null };
  }

  function onChain(chain) {
    if (!Array.isArray(chain)) return;
    const t = performance.now();
    lastChainAt = t;
    const placeholder = tbody.querySelector('tr.placeholder');
    if (placeholder) placeholder.remove();
    const seen = new Set();
    let anyBatches = false;
    const order = [];
    for (const s of chain) {
      if (!s || s.module === undefined) continue;
      const name = String(s.module);
      if (seen.has(name)) continue;
      seen.add(name);
      let m = modules.get(name);
      if (!m) { m = createRow(name); modules.set(name, m); }
      order.push(m);
      const out = Number(s.points_out);
      const busy = Number(s.busy_ms);
      const batches = s.batches === undefined || s.batches === null ? null : Number(s.batches);
      if (batches !== null) anyBatches = true;
      if (!m.last) {
        m.last = { t, out, busy, batches };
      } else if (t - m.last.t > 300) {
        const dt = (t - m.last.t) / 1000;
        const dOut = out - m.last.out;
        const dBusy = busy - m.last.busy;
        if (dOut >= 0) m.rate = dOut / dt; // a negative step: the counters were reset
        if (dOut > 0 && dBusy >= 0) m.usPerPoint = dBusy * 1000 / dOut;
        if (batches !== null && m.last.batches !== null) {
          const dB = batches - m.last.batches;
          if (dB > 0 && dBusy >= 0) m.msPerBatch = dBusy / dB;
        }
        m.last = { t, out, busy, batches };
      }
      if (m.generation !== null && s.generation !== m.generation) {
        m.prevGen = m.generation;
        m.swappedAt = t;
        m.row.classList.remove('swapped', 'attempt-failed');
        void m.row.offsetWidth; // restart the highlight animation
        m.row.classList.add('swapped');
      }
      m.generation = s.generation;
      m.digest = s.digest;
      renderRow(m, s);
    }
    for (const [name, m] of modules) {
      if (!seen.has(name)) { m.row.remove(); modules.delete(name); }
    }
    // keep the chain's order; move rows only when needed (moving restarts animations)
    const rows = Array.from(tbody.children);
    if (rows.length !== order.length || order.some((m, i) => rows[i] !== m.row)) {
      for (const m of order) tbody.appendChild(m.row);
    }
    $('time-head').textContent = anyBatches ? 'ms/batch' : 'Busy ms';
    $('time-head').title = anyBatches
      ? 'Time in the module per batch, over the last chain update'
      : 'Time spent in the module in all (hover a cell for µs per point)';
    const mods = {};
    for (const m of order) mods[m.name] = { generation: m.generation, digest: m.digest };
    ws.modules = mods;
    updateChainNote();
  }

  function renderRow(m, s) {
    const c = m.cells;
    m.row.dataset.generation = String(s.generation);
    m.row.dataset.digest = String(s.digest || '');
    c.digestCode.textContent = shortDigest(s.digest) || '–';
    c.digest.title = String(s.digest || '');
    renderGen(m);
    c.rate.textContent = fmtCompact(m.rate);
    c.rate.title = (m.rate === null ? 'rate after the next chain update' : fmtInt(m.rate) + ' points/s out') +
      (Number.isFinite(+s.rate_pps) ? '; host: ' + fmtInt(+s.rate_pps) + ' points per busy second' : '');
    c.out.textContent = fmtCount(+s.points_out);
    c.out.title = fmtInt(s.records_in) + ' records in, ' + fmtInt(s.points_out) + ' points out';
    c.rej.textContent = fmtCount(+s.rejected);
    c.rej.title = fmtInt(s.rejected) + ' rejected, ' + fmtInt(s.failed_records) + ' in failed batches';
    c.rej.classList.toggle('warn', +s.rejected > 0 || +s.failed_records > 0);
    if (+s.failed_records > 0) c.rej.textContent += ' +' + fmtCount(+s.failed_records);
    c.traps.textContent = fmtCount(+s.traps);
    c.traps.classList.toggle('bad', +s.traps > 0);
    if (s.batches !== undefined && s.batches !== null) {
      c.time.textContent = fmtMs(m.msPerBatch);
      c.time.title = fmtMs(+s.busy_ms) + ' ms busy in all over ' + fmtInt(s.batches) + ' batches';
    } else {
      c.time.textContent = fmtMs(+s.busy_ms);
      c.time.title = fmtMs(+s.busy_ms) + ' ms busy in all' +
        (m.usPerPoint !== null ? '; ' + m.usPerPoint.toFixed(2) + ' µs per point over the last update' : '');
    }
  }

  function renderGen(m) {
    const c = m.cells.gen;
    const recent = m.swappedAt !== null && performance.now() - m.swappedAt < SWAP_HIGHLIGHT_MS;
    c.replaceChildren(el('span', 'g', m.generation === null || m.generation === undefined ? '–' : m.generation));
    if (recent) {
      c.appendChild(el('span', 'was', 'was ' + m.prevGen));
      c.title = 'hot swap: generation ' + m.prevGen + ' → ' + m.generation;
    } else {
      c.title = 'generation ' + m.generation;
      m.row.classList.remove('swapped');
      m.swappedAt = null;
    }
  }

  function updateChainNote() {
    const note = $('chain-note');
    if (lastChainAt === null) { note.textContent = ''; return; }
    const age = (performance.now() - lastChainAt) / 1000;
    const n = modules.size;
    note.textContent = n + (n === 1 ? ' module' : ' modules') +
      (age > 3 ? ' · no update for ' + Math.round(age) + ' s' : ' · updated ' + (age < 1 ? 'just now' : Math.round(age) + ' s ago'));
    note.classList.toggle('stale', age > 3);
    $('modules').classList.toggle('stale', age > 3);
  }

  // ------------------------------------------------------------------ reloads and dead letters

  function addReload(ev, live) {
    if (!ev || typeof ev !== 'object') return;
    const key = [ev.at_ms, ev.module, ev.outcome, ev.digest, ev.generation].join('|');
    if (reloadKeys.has(key)) return;
    reloadKeys.add(key);
    reloadTotal++;
    let i = 0;
    while (i < reloads.length && +reloads[i].at_ms > +ev.at_ms) i++;
    reloads.splice(i, 0, ev);
    const list = $('reloads');
    const li = el('li', 'ev' + (live ? ' fresh' : ''));
    li.dataset.outcome = String(ev.outcome);
    li.dataset.module = String(ev.module);
    const line = el('div', 'ev-line');
    const outcome = String(ev.outcome);
    const badge = el('span', 'badge', OUTCOMES[outcome] || outcome);
    badge.dataset.outcome = outcome;
    line.append(timeEl(ev.at_ms), badge, el('strong', 'mod', ev.module));
    const ver = el('code', 'ver');
    ver.textContent = (ev.generation !== null && ev.generation !== undefined ? 'g' + ev.generation + ' · ' : '') +
      shortDigest(ev.digest);
    ver.title = String(ev.digest || '');
    line.appendChild(ver);
    li.appendChild(line);
    if (ev.detail !== null && ev.detail !== undefined && ev.detail !== '') li.appendChild(el('p', 'detail', ev.detail));
    list.insertBefore(li, list.children[i] || null);
    while (reloads.length > MAX_RELOADS) {
      const old = reloads.pop();
      reloadKeys.delete([old.at_ms, old.module, old.outcome, old.digest, old.generation].join('|'));
      list.lastElementChild.remove();
    }
    $('reloads-empty').hidden = reloads.length > 0;
    ws.reloads = reloads.slice();
    // a failed attempt shows on the module's row too (a success shows as its new generation)
    const m = modules.get(String(ev.module));
    if (live && m && (outcome === 'refused' || outcome === 'rolled_back' || outcome === 'snapshot_failed')) {
      m.row.classList.remove('attempt-failed');
      void m.row.offsetWidth;
      m.row.classList.add('attempt-failed');
      setTimeout(() => m.row.classList.remove('attempt-failed'), 4000);
    }
    if (live && m && outcome === 'activated' && m.row.classList.contains('attempt-failed')) {
      m.row.classList.remove('attempt-failed'); // the swap's highlight follows with the chain
    }
    // a new config or new geofence may have changed the zones: ask for the state again
    if (live && (outcome === 'config_applied' || (outcome === 'activated' && /geofence/.test(String(ev.module))))) {
      scheduleResync(800);
    }
  }

  function addDead(d, live) {
    if (!d || typeof d !== 'object') return;
    const key = [d.at_ms, d.module, d.cause, d.count].join('|');
    if (deadKeys.has(key)) return;
    deadKeys.add(key);
    if (deadKeys.size > 5000) deadKeys.delete(deadKeys.values().next().value);
    const count = Number.isFinite(+d.count) ? +d.count : 1;
    deadTotal += count;
    const aggKey = String(d.module) + '\n' + String(d.cause);
    const list = $('dead');
    let a = deadAgg.get(aggKey);
    if (!a) {
      a = { module: String(d.module), cause: String(d.cause), count: 0, last: -Infinity, li: el('li', 'ev') };
      a.li.dataset.module = a.module;
      a.li.dataset.key = aggKey;
      deadAgg.set(aggKey, a);
    }
    a.count += count;
    const newer = !(+d.at_ms < a.last);
    if (newer) a.last = +d.at_ms;
    const line = el('div', 'ev-line');
    line.append(timeEl(a.last), el('strong', 'mod', a.module), el('span', 'count', '× ' + fmtInt(a.count)));
    a.li.replaceChildren(line, el('p', 'detail cause', a.cause));
    a.li.dataset.count = String(a.count);
    if (live) {
      a.li.classList.remove('fresh');
      void a.li.offsetWidth;
      a.li.classList.add('fresh');
    }
    // newest first: put it where its time belongs
    if (newer) {
      let before = list.firstElementChild;
      while (before && before !== a.li && deadAgg.get(before.dataset.key) && deadAgg.get(before.dataset.key).last > a.last) {
        before = before.nextElementSibling;
      }
      if (before !== a.li) list.insertBefore(a.li, before);
    } else if (!a.li.parentNode) {
      list.appendChild(a.li);
    }
    while (list.children.length > MAX_DEAD) {
      const last = list.lastElementChild;
      deadAgg.delete(last.dataset.key);
      last.remove();
    }
    $('dead-empty').hidden = list.children.length > 0;
    ws.deadLetters = deadTotal;
  }

  // ------------------------------------------------------------------ state snapshot and events

  function applyState(st) {
    if (!st || typeof st !== 'object') return;
    if ('zones' in st) setZones(st.zones);
    if (Array.isArray(st.reload_events)) {
      st.reload_events.slice().sort((a, b) => +a.at_ms - +b.at_ms).forEach((e) => addReload(e, false));
    }
    if (Array.isArray(st.dead_letters)) {
      st.dead_letters.slice().sort((a, b) => +a.at_ms - +b.at_ms).forEach((d) => addDead(d, false));
    }
    if (Array.isArray(st.chain)) onChain(st.chain);
    if (Array.isArray(st.points)) takePoints(st.points, true);
    updateMapNote();
  }

  let resyncTimer = null;
  let stateLoaded = false;
  function scheduleResync(ms) {
    if (resyncTimer) return;
    resyncTimer = setTimeout(() => { resyncTimer = null; loadState(); }, ms);
  }
  async function loadState() {
    try {
      const r = await fetch('api/state', { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!r.ok) throw new Error('api/state: HTTP ' + r.status);
      applyState(await r.json());
      stateLoaded = true;
    } catch (e) {
      noteError(e);
      scheduleResync(stateLoaded ? 5000 : 2000);
    }
  }

  function noteError(e) {
    ws.errors++;
    ws.lastError = String((e && e.message) || e);
    if (window.console) console.warn('waystream:', ws.lastError);
  }

  let es = null;
  let everOpened = false;
  let retryDelay = 1000;
  let attempts = 0;
  function connect() {
    es = new EventSource('api/events');
    const on = (type, fn) => es.addEventListener(type, (e) => {
      lastMsgAt = performance.now();
      try { fn(JSON.parse(e.data)); } catch (err) { noteError(err); }
    });
    es.addEventListener('open', () => {
      lastMsgAt = performance.now();
      if (everOpened) { ws.reconnects++; scheduleResync(0); }
      everOpened = true;
      retryDelay = 1000;
      attempts = 0;
      setConnected(true);
    });
    es.addEventListener('error', () => {
      setConnected(false);
      attempts++;
      if (es.readyState === EventSource.CLOSED) {
        // the browser gave up (HTTP error, wrong type): try again ourselves, with backoff
        es.close();
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 15000);
      }
    });
    on('points', (list) => takePoints(list, false));
    on('chain', onChain);
    on('reload', (ev) => addReload(ev, true));
    on('dead_letter', (d) => addDead(d, true));
  }

  function setConnected(c) {
    connected = c;
    ws.connected = c;
    updateConn();
  }
  function updateConn() {
    const p = $('conn');
    let state;
    let text;
    if (connected) {
      const quiet = performance.now() - lastMsgAt;
      // no running count in the text: it is a live region, and would be read out each second
      if (quiet > STALE_MS) { state = 'stalled'; text = 'connected, no data for ' + STALE_MS / 1000 + '+ s'; } else { state = 'live'; text = 'live'; }
    } else if (!everOpened) {
      state = 'connecting'; text = attempts ? 'cannot reach the host, retrying…' : 'connecting…';
    } else {
      state = 'reconnecting'; text = 'disconnected, reconnecting…';
    }
    if (p.dataset.state !== state) p.dataset.state = state;
    const t = $('conn-text');
    if (t.textContent !== text) t.textContent = text;
  }

  // ------------------------------------------------------------------ once a second

  function updateMapNote() {
    const parts = [];
    if (zonesJson === 'null' || (zonesJson !== null && zoneParts.length === 0)) parts.push('no zones configured');
    else if (zoneParts.length) parts.push(ws.zones + (ws.zones === 1 ? ' zone' : ' zones'));
    if (held() >= MAX_POINTS) parts.push('newest ' + fmtInt(MAX_POINTS) + ' points');
    parts.push('hover a point for details');
    const text = parts.join(' · ');
    if ($('map-note').textContent !== text) $('map-note').textContent = text;
  }

  function tick() {
    const now = performance.now();
    const dt = (now - lastTickAt) / 1000;
    lastTickAt = now;
    const r = receivedSinceTick / Math.max(dt, 0.001);
    receivedSinceTick = 0;
    rateEma = rateEma === null ? r : rateEma * 0.5 + r * 0.5;
    trim(now);
    $('stat-rate').textContent = fmtCompact(rateEma);
    $('stat-received').textContent = fmtInt(ws.pointsReceived);
    $('stat-drawn').textContent = fmtInt(ws.pointsDrawn);
    $('stat-reloads').textContent = fmtInt(reloadTotal);
    $('stat-dead').textContent = fmtInt(deadTotal);
    classCounts.forEach((n, i) => { if (legendCounts[i]) legendCounts[i].textContent = fmtInt(n); });
    updateZoneCounts(zoneCounts);
    for (const m of modules.values()) if (m.swappedAt !== null) renderGen(m);
    updateChainNote();
    updateConn();
    updateMapNote();
    if (!needFit && view) {
      const before = viewVersion;
      maybeRefit(false);
      if (viewVersion !== before) requestDraw();
    }
    const busiest = classCounts.indexOf(Math.max(...classCounts));
    mapEl.setAttribute('aria-label', 'Map of ' + fmtInt(ws.pointsDrawn) + ' points from the last ' + windowText() +
      (zoneParts.length ? ', over ' + ws.zones + ' geofence zones' : '') +
      (ws.pointsDrawn ? '; most are ' + CLASSES[busiest].label : ''));
  }

  // ------------------------------------------------------------------ start

  $('map-title').textContent = 'Points, last ' + windowText();
  buildLegend();
  if (typeof ResizeObserver === 'function') new ResizeObserver(resize).observe(mapEl);
  window.addEventListener('resize', resize);
  resize();
  setInterval(tick, 1000);
  setInterval(requestDraw, FADE_REDRAW_MS);
  connect();
  loadState();
})();
