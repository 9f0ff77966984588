"""Deploys the stack into a moto server (deploy/tests/moto_deploy.py), in both delivery modes.

Starts its own moto_server on a free loopback port when moto[server] is installed next to the
interpreter running the tests; skipped otherwise. What moto can and cannot check is in
moto_deploy.py's docstring and docs/deploy.md.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MOTO_SERVER = Path(sys.executable).with_name("moto_server")

# Outputs moto can produce (those reading the dropped OpenSearch domain and Firehose stream are
# removed from the moto variant).
EXPECTED_OUTPUTS = {
    "Region", "StreamName", "StreamArn", "LeaseTableName", "DeliveryMode", "UploadBucketName",
    "UploadUri", "DeadLetterBucketName", "EmrLogBucketName", "IngestFunctionName",
    "IngestDeadLetterQueueUrl", "EmrClusterId", "HostLogGroupName", "HostRoleArn",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    if not MOTO_SERVER.exists():
        pytest.skip("moto[server] is not installed in this virtualenv")
    port = free_port()
    server = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("moto_server did not start")
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def deploy(endpoint: str, stack: str, *args: str) -> tuple[dict, str]:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    result = subprocess.run(
        [sys.executable, str(HERE / "moto_deploy.py"), "--endpoint", endpoint, "--stack-name", stack, *args],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_firehose_mode(moto_endpoint):
    outputs, log = deploy(moto_endpoint, "waystream-firehose")
    assert set(outputs) == EXPECTED_OUTPUTS | {"FailedDocumentsBucketName"}
    assert outputs["DeliveryMode"] == "firehose"
    for dropped in ("SearchDomain", "DeliveryStream", "FirehoseDestinationLogStream", "FirehoseBackupLogStream"):
        assert dropped in log
    assert "FAIL" not in log


def test_direct_mode(moto_endpoint):
    outputs, log = deploy(
        moto_endpoint, "waystream-direct", "--delivery", "direct",
        "--param", "NamePrefix=wsdirect", "--param", "StreamMode=ON_DEMAND",
        "--param", "KeyName=ops", "--param", "AdminPrincipalArn=arn:aws:iam::123456789012:role/Admin",
    )
    assert set(outputs) == EXPECTED_OUTPUTS
    assert outputs["StreamName"] == "wsdirect-points"
    assert "FAIL" not in log
