"""cfn-lint reports nothing on deploy/waystream.yaml.

Errors (E) and warnings (W) fail the test, and so do cfn-lint's informational findings (I): the
template is clean at every level. If a finding ever becomes unavoidable, ignore that one check in
the template's `Metadata: cfn-lint: config: ignore_checks` with a comment saying why, never here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "waystream.yaml"


def cfn_lint(*args: str) -> subprocess.CompletedProcess:
    # The cfn-lint installed with the interpreter running the tests (the virtualenv's), else PATH's.
    beside = Path(sys.executable).with_name("cfn-lint")
    command = str(beside) if beside.exists() else shutil.which("cfn-lint")
    assert command, "cfn-lint is not installed (pip install cfn-lint)"
    return subprocess.run(
        [command, *args, "--", str(TEMPLATE)], capture_output=True, text=True, timeout=300
    )


def test_cfn_lint_is_clean():
    result = cfn_lint()
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_cfn_lint_informational_is_clean():
    result = cfn_lint("--include-checks", "I")
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
