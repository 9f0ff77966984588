"""Shared fixtures: the real componentize-py bindings, for testing the component glue
natively (the host's log import replaced by a list)."""

import importlib
import subprocess
import sys

import pytest

from waystream_guest import hostlog

BINDINGS_SCRIPT = (
    "import sys; from componentize_py import script; "
    "sys.argv[0] = 'componentize-py'; sys.exit(script())"
)


@pytest.fixture(scope="session")
def bindings_dir(tmp_path_factory):
    """componentize-py's generated ``wit_world`` package for the bundled WIT."""
    pytest.importorskip("componentize_py")
    from waystream_guest.__main__ import WIT_DIR, WORLD

    out = tmp_path_factory.mktemp("bindings")
    subprocess.run(
        [sys.executable, "-c", BINDINGS_SCRIPT, "-d", str(WIT_DIR), "-w", WORLD, "bindings", str(out)],
        check=True,
    )
    return out


@pytest.fixture
def component(bindings_dir, monkeypatch):
    """A fresh import of ``waystream_guest.component`` over the real bindings; the host's
    log lines land in ``component.host_log``. Restores stdout, stderr and logging after."""
    monkeypatch.syspath_prepend(str(bindings_dir))
    for name in [m for m in sys.modules if m == "waystream_guest.component" or m.startswith("wit_world")]:
        del sys.modules[name]
    saved = (sys.stdout, sys.stderr, hostlog._sink, hostlog._queue, hostlog._dropped)
    log_module = importlib.import_module("wit_world.imports.log")
    host_log = []
    monkeypatch.setattr(log_module, "log", lambda level, message: host_log.append((level.name, message)))
    try:
        module = importlib.import_module("waystream_guest.component")
        module.host_log = host_log
        yield module
    finally:
        sys.stdout, sys.stderr, hostlog._sink, hostlog._queue, hostlog._dropped = saved
        del sys.modules["waystream_guest.component"]
