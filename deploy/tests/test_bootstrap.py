"""Runs deploy/emr/bootstrap.sh against a fake node.

WAYSTREAM_ROOT points the script at a temporary root; `aws`, `useradd`, `dnf`, `systemctl` and
the CloudWatch agent's control script are stubs on PATH that record their calls (`aws s3 cp`
copies from a directory standing in for S3). The host tarball is built from the repository's
own deploy/ files, with a stand-in bin/waystream.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "emr" / "bootstrap.sh"

ARGS = {
    "--region": "eu-west-1",
    "--stream": "waystream-points",
    "--lease-table": "waystream-leases",
    "--delivery": "firehose",
    "--delivery-stream": "waystream-points",
    "--opensearch-endpoint": "https://search-waystream-abc.eu-west-1.es.amazonaws.com",
    "--dead-letter-bucket": "waystream-dead-letters-123456789012-eu-west-1",
    "--artifacts": "s3://artifacts-bucket/waystream/",
    "--log-group": "/waystream/waystream/host",
}

STUB = """#!/usr/bin/env bash
printf '%s\\n' "$(basename "$0") $*" >> "$STUB_LOG"
"""

AWS_STUB = STUB + """
# aws s3 cp [options] s3://bucket/key DEST  ->  copy $FAKE_S3/bucket/key
src="${@: -2:1}" dest="${@: -1}"
path="$FAKE_S3/${src#s3://}"
[[ -f $path ]] || { echo "fatal error: not found: $src" >&2; exit 1; }
if [[ -d $dest ]]; then cp "$path" "$dest/"; else cp "$path" "$dest"; fi
"""


def build_tarball(path: Path) -> None:
    """A waystream-host.tar.gz laid out as docs/deploy.md says `cargo xtask package` makes it."""
    members = {
        "deploy/host/pipeline-aws.toml": (REPO / "deploy/host/pipeline-aws.toml").read_bytes(),
        "deploy/host/pipeline-aws-direct.toml": (REPO / "deploy/host/pipeline-aws-direct.toml").read_bytes(),
        "deploy/systemd/waystream.service": (REPO / "deploy/systemd/waystream.service").read_bytes(),
        "bin/waystream": b"#!/bin/sh\necho stand-in\n",
        "modules/parse-plt.wasm": b"",
        "modules/geofence.wasm": b"",
        "modules/speed.wasm": b"",
        "zones/zones.geojson": b'{"type":"FeatureCollection","features":[]}',
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            archive.addfile(info, io.BytesIO(data))


@pytest.fixture
def node(tmp_path: Path):
    root = tmp_path / "root"
    bin_dir = tmp_path / "bin"
    s3 = tmp_path / "s3" / "artifacts-bucket" / "waystream"
    for d in (root, bin_dir, s3):
        d.mkdir(parents=True)
    tarball = s3 / "waystream-host.tar.gz"
    build_tarball(tarball)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    (s3 / "waystream-host.tar.gz.sha256").write_text(f"{digest}  waystream-host.tar.gz\n")

    for name in ("useradd", "dnf", "systemctl"):
        (bin_dir / name).write_text(STUB)
    (bin_dir / "aws").write_text(AWS_STUB)
    ctl = root / "opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
    ctl.parent.mkdir(parents=True)
    ctl.write_text(STUB)
    for stub in [*bin_dir.iterdir(), ctl]:
        stub.chmod(0o755)

    info = tmp_path / "instance.json"
    info.write_text('{"isMaster": false, "isRunningNameNode": false}\n')
    log = tmp_path / "calls.log"
    log.touch()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "WAYSTREAM_ROOT": str(root),
        "WAYSTREAM_INSTANCE_INFO": str(info),
        "FAKE_S3": str(tmp_path / "s3"),
        "STUB_LOG": str(log),
    }

    class Node:
        pass

    n = Node()
    n.root, n.env, n.info, n.log, n.s3 = root, env, info, log, s3

    def run(**overrides: str) -> subprocess.CompletedProcess:
        args = {**ARGS, **overrides}
        argv = ["bash", str(SCRIPT)]
        for key, value in args.items():
            if value is not None:
                argv += [key, value]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    n.run = run
    n.calls = lambda: log.read_text().splitlines()
    return n


def test_core_node_firehose(node):
    result = node.run()
    assert result.returncode == 0, result.stderr
    config = tomllib.loads((node.root / "etc/waystream/pipeline.toml").read_text())
    assert config["source"] == {
        "type": "kinesis",
        "stream": "waystream-points",
        "lease_table": "waystream-leases",
        "create_lease_table": False,
    }
    assert config["sink"] == {"type": "firehose", "delivery_stream": "waystream-points"}
    assert config["dead_letter"] == {
        "type": "s3",
        "bucket": "waystream-dead-letters-123456789012-eu-west-1",
        "prefix": "dead-letters/",
    }
    assert [t["name"] for t in config["transforms"]] == ["parse-plt", "geofence", "speed"]
    for transform in config["transforms"]:
        assert transform["path"].startswith("/opt/waystream/modules/")

    assert (node.root / "opt/waystream/bin/waystream").stat().st_mode & 0o111
    unit = node.root / "etc/systemd/system/waystream.service"
    assert unit.read_text() == (REPO / "deploy/systemd/waystream.service").read_text()
    dropin = (node.root / "etc/systemd/system/waystream.service.d/10-aws.conf").read_text()
    assert "Environment=AWS_REGION=eu-west-1" in dropin

    agent = json.loads((node.root / "opt/aws/amazon-cloudwatch-agent/etc/waystream.json").read_text())
    (entry,) = agent["logs"]["logs_collected"]["files"]["collect_list"]
    assert entry["log_group_name"] == "/waystream/waystream/host"
    assert entry["file_path"] == "/var/log/waystream/waystream.log"
    assert (node.root / "etc/logrotate.d/waystream").exists()

    calls = node.calls()
    assert any(c.startswith("useradd --system") for c in calls)
    assert "systemctl daemon-reload" in calls
    assert "systemctl enable --now waystream.service" in calls
    assert any(c.startswith("amazon-cloudwatch-agent-ctl -a append-config") for c in calls)
    assert "checking sha256" in result.stderr


def test_core_node_direct(node):
    result = node.run(**{"--delivery": "direct", "--delivery-stream": "none"})
    assert result.returncode == 0, result.stderr
    config = tomllib.loads((node.root / "etc/waystream/pipeline.toml").read_text())
    assert config["sink"] == {
        "type": "opensearch",
        "endpoint": "https://search-waystream-abc.eu-west-1.es.amazonaws.com",
        "index": "waystream-points",
        "auth": "sigv4",
        "max_bulk_bytes": 5242880,
    }


def test_primary_node_does_nothing(node):
    node.info.write_text('{"isMaster": true, "isRunningNameNode": true}\n')
    result = node.run()
    assert result.returncode == 0, result.stderr
    assert not (node.root / "opt/waystream").exists()
    assert not (node.root / "etc/waystream").exists()
    assert node.calls() == []


def test_rerun_replaces_the_install(node):
    assert node.run().returncode == 0
    result = node.run()
    assert result.returncode == 0, result.stderr
    assert not (node.root / "opt/waystream.old").exists()
    assert not (node.root / "opt/waystream.new").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"--stream": None}, "--stream is required"),
        ({"--delivery": "kafka"}, "--delivery must be firehose or direct"),
        ({"--delivery-stream": "none"}, "--delivery firehose needs --delivery-stream"),
        ({"--delivery": "direct", "--opensearch-endpoint": "http://x"}, "must be https://"),
        ({"--stream": 'a"b'}, "unexpected characters"),
        ({"--artifacts": "/local/path/"}, "must be an s3:// URI"),
    ],
)
def test_bad_arguments_are_refused(node, overrides, message):
    result = node.run(**overrides)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (node.root / "opt/waystream").exists()


def test_checksum_mismatch_is_refused(node):
    (node.s3 / "waystream-host.tar.gz.sha256").write_text(f"{'0' * 64}  waystream-host.tar.gz\n")
    result = node.run()
    assert result.returncode != 0
    assert "does not match" in result.stderr
    assert not (node.root / "etc/systemd/system/waystream.service").exists()


def test_missing_checksum_is_tolerated(node):
    (node.s3 / "waystream-host.tar.gz.sha256").unlink()
    result = node.run()
    assert result.returncode == 0, result.stderr
    assert "not checked" in result.stderr


def test_leftover_placeholder_is_refused(node, tmp_path):
    # A template with a token the script does not know must fail, not start a broken host.
    tarball = node.s3 / "waystream-host.tar.gz"
    extra = tmp_path / "extra"
    extra.mkdir()
    with tarfile.open(tarball) as archive:
        archive.extractall(extra, filter="data")
    toml = extra / "deploy/host/pipeline-aws.toml"
    toml.write_text(toml.read_text() + '\nworker_id = "@WORKER@"\n')
    with tarfile.open(tarball, "w:gz") as archive:
        for item in sorted(extra.rglob("*")):
            archive.add(item, arcname=str(item.relative_to(extra)), recursive=False)
    (node.s3 / "waystream-host.tar.gz.sha256").unlink()
    result = node.run()
    assert result.returncode != 0
    assert "placeholder @WORKER@ left" in result.stderr
