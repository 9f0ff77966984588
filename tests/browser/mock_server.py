#!/usr/bin/env python3
"""A stand-in for the waystream host's HTTP server, to develop and demonstrate the live page
and its browser test without the Rust host. Python standard library only.

It serves the page files from host/src/http/page/ and a fake API of the same shape as the
host's:

  GET /api/state   the chain, the zones (zones/beijing-demo.geojson), recent reload events,
                   dead letters and points
  GET /api/events  Server-Sent Events: `points` (4 a second), `chain` (once a second),
                   `reload`, `dead_letter`; a `: keep-alive` comment every 15 s of silence

The points are simulated movers (stopped, walking, cycling, driving, and a few GPS
glitches with implausible speeds) travelling between the zones, replayed 6x faster than
real time (their timestamps advance 6 s per second, so position, time and speed agree). The
chain is parse-plt -> geofence -> speed; after --reload-after seconds (5) a reload event
activates speed's generation 2 (and a refused one comes 2 s before it).

  python3 tests/browser/mock_server.py [--port 8765] [--host 127.0.0.1] [--reload-after 5]
                                       [--no-zones] [--drop-sse-after S] [--movers 40]

--port 0 picks a free port. The first line on stdout is `mock: serving http://HOST:PORT/`.
--drop-sse-after S closes every event stream after S seconds, so the page's reconnection
can be seen working. --no-zones serves `"zones": null`.
"""

import argparse
import hashlib
import json
import math
import os
import queue
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAGE_DIR = os.path.join(REPO, "host", "src", "http", "page")
ZONES_FILE = os.path.join(REPO, "zones", "beijing-demo.geojson")

PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

# What the real host is advised to send with the page (the page works under it).
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

ACCEL = 6.0           # simulated seconds per real second
EMIT_EVERY = 0.5      # each mover emits a point every this many real seconds
START_TS = 1222839463  # 2008-10-01T05:37:43Z


def digest_of(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------- geometry


def polygons_of(feature):
    g = feature["geometry"]
    if g["type"] == "Polygon":
        return [g["coordinates"]]
    if g["type"] == "MultiPolygon":
        return g["coordinates"]
    return []


def in_ring(lon, lat, ring):
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def zones_at(lon, lat, zones):
    names = []
    for f in zones["features"] if zones else []:
        for poly in polygons_of(f):
            if in_ring(lon, lat, poly[0]) and not any(in_ring(lon, lat, h) for h in poly[1:]):
                names.append(f["properties"]["name"])
                break
    return sorted(set(names))


def part_centres(zones):
    """The centre of each polygon (each part of a MultiPolygon), as (lon, lat)."""
    out = []
    for f in zones["features"]:
        for poly in polygons_of(f):
            ring = poly[0][:-1]
            out.append((sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)))
    return out


def metres(lon1, lat1, lon2, lat2):
    k = 111_320.0
    dx = (lon2 - lon1) * k * math.cos(math.radians((lat1 + lat2) / 2))
    dy = (lat2 - lat1) * k
    return math.hypot(dx, dy)


# ---------------------------------------------------------------- simulation


class Mover:
    MODES = [  # (mode, share, speed range m/s)
        ("stopped", 0.15, (0.0, 0.6)),
        ("walking", 0.30, (1.1, 1.7)),
        ("cycling", 0.30, (3.5, 6.5)),
        ("driving", 0.20, (9.0, 22.0)),
        ("glitchy", 0.05, (12.0, 18.0)),
    ]

    def __init__(self, i, rng, centres):
        self.rng = rng
        r, acc = rng.random(), 0.0
        for mode, share, speeds in self.MODES:
            acc += share
            if r <= acc:
                break
        self.mode, self.speeds = mode, speeds
        self.user = "%03d" % i
        self.trajectory = "200810%02d%02d%02d%02d" % (1 + i % 28, rng.randrange(24),
                                                      rng.randrange(60), rng.randrange(60))
        self.route = [rng.choice(centres) for _ in range(rng.randrange(3, 6))]
        self.route = [(lon + rng.uniform(-0.01, 0.01), lat + rng.uniform(-0.01, 0.01))
                      for lon, lat in self.route]
        self.leg = 0
        self.lon, self.lat = self.route[0]
        self.ts = START_TS + rng.randrange(0, 600)
        self.speed = rng.uniform(*speeds)

    def step(self, dt_sim):
        """Advance dt_sim simulated seconds; returns the point dict."""
        rng = self.rng
        self.ts += dt_sim
        if self.mode == "stopped":
            self.lon += rng.gauss(0, 0.00003)
            self.lat += rng.gauss(0, 0.00003)
            speed = rng.uniform(*self.speeds)
        else:
            self.speed = min(max(self.speed + rng.gauss(0, 0.4), self.speeds[0]), self.speeds[1])
            speed = self.speed
            todo = speed * dt_sim
            while todo > 0:
                tlon, tlat = self.route[(self.leg + 1) % len(self.route)]
                d = metres(self.lon, self.lat, tlon, tlat)
                if d <= todo:
                    self.lon, self.lat = tlon, tlat
                    self.leg = (self.leg + 1) % len(self.route)
                    todo -= d
                    if d == 0:
                        break
                else:
                    f = todo / d
                    self.lon += (tlon - self.lon) * f
                    self.lat += (tlat - self.lat) * f
                    todo = 0
            if self.mode == "glitchy" and rng.random() < 0.15:
                # a GPS glitch: a jump that makes the speed implausible
                speed = rng.uniform(35.0, 90.0)
        if rng.random() < 0.02:
            speed = None  # repeated timestamp: no speed
        return {
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "speed_mps": None if speed is None else round(speed, 2),
            "user": self.user,
            "trajectory": self.trajectory,
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(self.ts))),
            "ts_ms": int(self.ts * 1000),
        }


DEAD_CAUSES = [
    ("parse-plt", "empty line"),
    ("parse-plt", "expected 7 comma-separated fields, found 5"),
    ("parse-plt", "latitude 91.204 out of range"),
    ("parse-plt", "timestamp: invalid date 2008-13-01"),
    ("speed", "timestamp before the previous point of the trajectory"),
]


class Sim:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        with open(ZONES_FILE) as f:
            self.zone_data = json.load(f)
        self.zones = None if args.no_zones else self.zone_data
        centres = part_centres(self.zone_data)
        self.movers = [Mover(i, self.rng, centres) for i in range(args.movers)]
        self.lock = threading.Lock()
        self.subscribers = set()
        self.started = time.time()
        self.recent_points = []       # the state's points, at most 3000
        self.reload_events = []
        self.dead_letters = []
        self.pending_points = []
        gen1 = {
            "parse-plt": digest_of("parse-plt v1"),
            "geofence": digest_of("geofence v1"),
            "speed": digest_of("speed v1"),
        }
        self.chain = [
            {"module": m, "digest": gen1[m], "generation": 1, "records_in": 0, "points_out": 0,
             "rejected": 0, "failed_records": 0, "traps": 0, "busy_ms": 0.0, "rate_pps": 0.0}
            for m in ("parse-plt", "geofence", "speed")
        ]
        if args.batches:
            for s in self.chain:
                s["batches"] = 0
        self.schedule = [
            (max(args.reload_after - 2.0, 0.5), self.refuse_speed),
            (args.reload_after, self.activate_speed_2),
        ]

    # -- subscribers
    def subscribe(self):
        q = queue.Queue(maxsize=1000)
        with self.lock:
            self.subscribers.add(q)
        return q

    def unsubscribe(self, q):
        with self.lock:
            self.subscribers.discard(q)

    def publish(self, event, data):
        msg = "event: %s\ndata: %s\n\n" % (event, json.dumps(data, separators=(",", ":")))
        with self.lock:
            subs = list(self.subscribers)
        for q in subs:
            try:
                q.put_nowait(msg)
            except queue.Full:
                pass  # a slow client loses events, as the real host may

    # -- state
    def state(self):
        with self.lock:
            return {
                "chain": json.loads(json.dumps(self.chain)),
                "zones": self.zones,
                "reload_events": list(self.reload_events),
                "dead_letters": list(self.dead_letters),
                "points": list(self.recent_points),
            }

    def stage(self, name):
        return next(s for s in self.chain if s["module"] == name)

    # -- reloads
    def reload_event(self, module, digest, outcome, detail, generation):
        ev = {"at_ms": now_ms(), "module": module, "digest": digest, "outcome": outcome,
              "detail": detail, "generation": generation}
        with self.lock:
            self.reload_events.append(ev)
            del self.reload_events[:-50]
        self.publish("reload", ev)
        print("mock: reload %s %s generation %s" % (module, outcome, generation), flush=True)

    def refuse_speed(self):
        self.reload_event("speed", digest_of("speed broken build"), "refused",
                          "compile: magic header not detected: bad magic number", None)

    def activate_speed_2(self):
        d = digest_of("speed v2")
        with self.lock:
            s = self.stage("speed")
            s["digest"], s["generation"] = d, 2
        self.reload_event("speed", d, "activated", None, 2)

    # -- the loop
    def run(self):
        tick = 0.25
        next_t = time.time()
        last_chain = 0.0
        emit_acc = 0.0
        while True:
            next_t += tick
            time.sleep(max(0.0, next_t - time.time()))
            elapsed = time.time() - self.started
            while self.schedule and elapsed >= self.schedule[0][0]:
                self.schedule.pop(0)[1]()

            # points: each mover every EMIT_EVERY seconds, spread over the ticks
            emit_acc += tick / EMIT_EVERY * len(self.movers)
            n = int(emit_acc)
            emit_acc -= n
            pts = []
            for _ in range(n):
                m = self.rng.choice(self.movers)
                p = m.step(EMIT_EVERY * ACCEL)
                p["zones"] = zones_at(p["lon"], p["lat"], self.zone_data)
                pts.append(p)
            rejected = (None, 0)
            if self.rng.random() < 0.12:
                module, cause = self.rng.choice(DEAD_CAUSES)
                count = self.rng.randrange(1, 5)
                rejected = (module, count)
                dl = {"at_ms": now_ms(), "module": module, "cause": cause, "count": count}
                with self.lock:
                    self.dead_letters.append(dl)
                    del self.dead_letters[:-50]
                self.publish("dead_letter", dl)
            with self.lock:
                for s in self.chain:
                    first = s["module"] == "parse-plt"
                    mine = rejected[1] if s["module"] == rejected[0] else 0
                    s["records_in"] += len(pts) + mine
                    s["points_out"] += len(pts)
                    s["rejected"] += mine
                    s["busy_ms"] = round(s["busy_ms"] + len(pts) * (0.0007 if first else 0.0003)
                                         * self.rng.uniform(0.8, 1.2), 3)
                    if "batches" in s and pts:
                        s["batches"] += 1
                    if s["busy_ms"] > 0:
                        s["rate_pps"] = round(s["points_out"] / (s["busy_ms"] / 1000.0), 1)
                self.recent_points.extend(pts)
                del self.recent_points[:-3000]
            if pts:
                self.publish("points", pts)
            if time.time() - last_chain >= 1.0:
                last_chain = time.time()
                with self.lock:
                    chain = json.loads(json.dumps(self.chain))
                self.publish("chain", chain)


# ---------------------------------------------------------------- HTTP


def make_handler(sim, args):
    class Handler(BaseHTTPRequestHandler):
        server_version = "waystream-mock"

        def log_message(self, fmt, *a):
            if args.verbose:
                sys.stderr.write("mock: %s %s\n" % (self.address_string(), fmt % a))

        def send_body(self, code, ctype, body, extra=()):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path in PAGE_FILES:
                name, ctype = PAGE_FILES[path]
                try:
                    with open(os.path.join(PAGE_DIR, name), "rb") as f:
                        body = f.read()
                except OSError as e:
                    return self.send_body(500, "text/plain", str(e).encode())
                extra = [("Content-Security-Policy", CSP)] if name == "index.html" else []
                return self.send_body(200, ctype, body, extra)
            if path == "/api/state":
                body = json.dumps(sim.state(), separators=(",", ":")).encode()
                return self.send_body(200, "application/json", body,
                                      [("Cache-Control", "no-store")])
            if path == "/api/events":
                return self.events()
            self.send_body(404, "text/plain; charset=utf-8", b"not found\n")

        def events(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Accel-Buffering", "no")
            self.end_headers()
            q = sim.subscribe()
            opened = time.time()
            try:
                self.wfile.write(b"retry: 2000\n\n")
                with sim.lock:
                    chain = json.loads(json.dumps(sim.chain))
                self.wfile.write(("event: chain\ndata: %s\n\n"
                                  % json.dumps(chain, separators=(",", ":"))).encode())
                self.wfile.flush()
                while True:
                    if args.drop_sse_after and time.time() - opened > args.drop_sse_after:
                        print("mock: dropping an event stream", flush=True)
                        return
                    try:
                        msg = q.get(timeout=15.0)
                    except queue.Empty:
                        msg = ": keep-alive\n\n"
                    self.wfile.write(msg.encode())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                sim.unsubscribe(q)
                self.close_connection = True

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    ap.add_argument("--reload-after", type=float, default=5.0,
                    help="seconds before speed's generation 2 is activated")
    ap.add_argument("--no-zones", action="store_true", help='serve "zones": null')
    ap.add_argument("--drop-sse-after", type=float, default=0.0,
                    help="close each event stream after this many seconds (0: never)")
    ap.add_argument("--movers", type=int, default=40)
    ap.add_argument("--batches", action="store_true",
                    help="add a `batches` counter to each stage (lets the page show ms/batch)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--verbose", action="store_true", help="log each request")
    args = ap.parse_args()

    sim = Sim(args)
    threading.Thread(target=sim.run, daemon=True).start()
    srv = ThreadingHTTPServer((args.host, args.port), make_handler(sim, args))
    srv.daemon_threads = True
    host, port = srv.server_address[:2]
    print("mock: serving http://%s:%d/" % (host, port), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
