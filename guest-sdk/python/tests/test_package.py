from pathlib import Path

import pytest

import waystream_guest
from waystream_guest.__main__ import WIT_DIR


def test_the_bundled_wit_is_the_repository_contract():
    """The package carries wit/waystream.wit so projects build from anywhere; it must stay
    identical to the repository's (when the repository is there)."""
    bundled = (WIT_DIR / "waystream.wit").read_bytes()
    assert f"package {waystream_guest.CONTRACT};".encode() in bundled
    repo = Path(__file__).resolve().parents[3] / "wit" / "waystream.wit"
    if not repo.exists():
        pytest.skip("not inside the waystream repository")
    assert bundled == repo.read_bytes(), "copy wit/waystream.wit into guest-sdk/python/src/waystream_guest/wit/"


def test_the_hostile_guest_raises_natively():
    import importlib.util

    spec = importlib.util.spec_from_file_location("raises", Path(__file__).parent / "guests" / "raises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from waystream_guest.testing import Harness, point, points_batch, trajectory

    h = Harness(module.Raises)
    assert len(h.process(points_batch([point(0)], [trajectory("u", "good")])).points) == 1
    text = h.process_error(points_batch([point(0)], [trajectory("u", "bad1")]))
    assert text.startswith("ValueError: bad point\nTraceback")
