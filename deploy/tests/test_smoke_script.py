"""Runs deploy/smoke-test.sh against a stand-in HTTP server.

No OpenSearch server can run here (docs/deploy.md): this checks the script's own work (the
requests it makes, the answers it prints, its exit status), not OpenSearch. The stand-in answers
with the shapes of OpenSearch 2.x's _count and _search responses.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "smoke-test.sh"


class FakeOpenSearch(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, object]] = []
    count = 50949
    status = 200

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        type(self).requests.append((self.command, self.path, body))
        if type(self).status != 200:
            payload = {"error": {"type": "security_exception", "reason": "no permissions"}, "status": 403}
        elif self.path.endswith("/_count"):
            payload = {"count": type(self).count, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}
        else:
            source = {
                "user": "021", "trajectory": "20081023025304", "seq": 7, "ts": "2008-10-23T02:53:11Z",
                "location": {"lat": 39.984, "lon": 116.318}, "speed_mps": 1.25,
                "zones": ["tsinghua"], "flags": [],
            }
            payload = {"took": 3, "timed_out": False,
                       "hits": {"total": {"value": 1234, "relation": "eq"}, "max_score": None,
                                "hits": [{"_index": "waystream-points-2026-12-04", "_id": "x",
                                          "_score": None, "_source": source, "sort": [1]}]}}
        data = json.dumps(payload).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server():
    FakeOpenSearch.requests = []
    FakeOpenSearch.count = 50949
    FakeOpenSearch.status = 200
    httpd = HTTPServer(("127.0.0.1", 0), FakeOpenSearch)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def run(endpoint: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYSTREAM_")}
    env["WAYSTREAM_UNSIGNED"] = "1"
    return subprocess.run(["bash", str(SCRIPT), endpoint], env=env, capture_output=True, text=True, timeout=30)


def test_prints_count_and_geo_query(server):
    result = run(server)
    assert result.returncode == 0, result.stderr
    assert "points indexed: 50949" in result.stdout
    assert "within 10km of 39.98,116.32: 1234" in result.stdout
    assert "021/20081023025304 #7" in result.stdout

    (count_req, search_req) = FakeOpenSearch.requests
    assert count_req[:2] == ("GET", "/waystream-points*/_count")
    method, path, body = search_req
    assert (method, path) == ("POST", "/waystream-points*/_search")
    assert body["query"] == {"geo_distance": {"distance": "10km", "location": {"lat": 39.98, "lon": 116.32}}}
    assert body["track_total_hits"] is True


def test_no_points_fails(server):
    FakeOpenSearch.count = 0
    result = run(server)
    assert result.returncode == 1
    assert "no points indexed yet" in result.stderr


def test_http_error_fails(server):
    FakeOpenSearch.status = 403
    result = run(server)
    assert result.returncode != 0
    assert "HTTP 403" in result.stderr


def test_needs_an_endpoint():
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("WAYSTREAM_")})
    assert result.returncode == 2
    assert "usage" in result.stderr
