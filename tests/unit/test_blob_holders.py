"""Where a run remembers a blob to live on a target: bounded, whatever the number of
repositories sharing it (a glob's base layer in thousands of repositories), and the mount
comes from the latest holder. Pure: the mover's bookkeeping without I/O."""

from __future__ import annotations

from regsync.daemon.engine.blobs import HOLDERS_KEPT, _Holding, _mount_source, _remember


def test_a_holding_keeps_the_latest_repositories_only() -> None:
    holding = _Holding()
    for n in range(1000):
        _remember(holding.repositories, f"mirror/app{n}")
    assert len(holding.repositories) == HOLDERS_KEPT
    assert "mirror/app999" in holding.repositories and "mirror/app0" not in holding.repositories
    _remember(holding.repositories, "mirror/app950")  # seen again: the latest now
    assert list(holding.repositories)[-1] == "mirror/app950"
    assert len(holding.repositories) == HOLDERS_KEPT


def test_a_mount_comes_from_the_latest_other_holder() -> None:
    holding = _Holding()
    for name in ("m/a", "m/b", "m/c"):
        _remember(holding.repositories, name)
    assert _mount_source(holding, "dst", "src/x", "dst", "m/c") == "m/b"
    assert _mount_source(holding, "dst", "src/x", "dst", "m/z") == "m/c"
    assert _mount_source(_Holding(), "dst", "src/x", "dst", "m/z") == "src/x"  # one registry
    assert _mount_source(_Holding(), "src", "src/x", "dst", "m/z") is None
