"""Where a run remembers a blob to live on a target: bounded, whatever the number of
repositories sharing it (a glob's base layer in thousands of repositories), and the mount
comes from the latest holder. Pure: the mover's bookkeeping without I/O."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import trio
from regsync.daemon.engine.blobs import (
    HOLDERS_KEPT,
    HOLDINGS_KEPT,
    BlobMover,
    _Holding,
    _mount_source,
    _remember,
)
from regsync.daemon.engine.side import Side
from regsync.daemon.engine.slots import BlobSlots
from regsync.daemon.engine.throughput import Floor
from regsync.daemon.oci.port import RegistryPort
from regsync.daemon.registry.retry import RetryPolicy


def test_a_holding_keeps_the_latest_repositories_only() -> None:
    holding = _Holding()
    for n in range(1000):
        _remember(holding.repositories, f"mirror/app{n}")
    assert len(holding.repositories) == HOLDERS_KEPT
    assert "mirror/app999" in holding.repositories and "mirror/app0" not in holding.repositories
    _remember(holding.repositories, "mirror/app950")  # seen again: the latest now
    assert list(holding.repositories)[-1] == "mirror/app950"
    assert len(holding.repositories) == HOLDERS_KEPT


def side(registry: str, repository: str) -> Side:
    return Side(cast(RegistryPort, SimpleNamespace(name=registry)), repository)


def test_a_mount_comes_from_the_latest_other_holder() -> None:
    holding = _Holding()
    for name in ("m/a", "m/b", "m/c"):
        _remember(holding.repositories, name)
    assert _mount_source(holding, side("dst", "src/x"), side("dst", "m/c")) == "m/b"
    assert _mount_source(holding, side("dst", "src/x"), side("dst", "m/z")) == "m/c"
    assert _mount_source(_Holding(), side("dst", "src/x"), side("dst", "m/z")) == "src/x"
    assert _mount_source(_Holding(), side("src", "src/x"), side("dst", "m/z")) is None


def test_a_run_remembers_its_most_recently_used_blobs_and_never_one_in_use() -> None:
    """5,000 tags of their own layer plus one shared base: the base stays (every tag uses it),
    the oldest idle layers go, and a blob being moved is never forgotten under its waiters."""
    mover = BlobMover(slots=BlobSlots(1), floor=Floor(0, 1), retry=RetryPolicy(),
                      on_bytes=lambda n: None, on_outcome=lambda outcome, size: None)
    moving = mover._holding(("dst", "sha256:moving"))
    moving.busy = trio.Event()
    base = ("dst", "sha256:base")
    for n in range(5000):
        mover._holding(("dst", f"sha256:{n}"))
        mover._holding(base)
    assert len(mover._holdings) == HOLDINGS_KEPT
    assert ("dst", "sha256:moving") in mover._holdings and base in mover._holdings
    assert ("dst", "sha256:4999") in mover._holdings and ("dst", "sha256:0") not in mover._holdings
    assert mover._holding(("dst", "sha256:moving")) is moving


async def test_a_manifest_lock_excludes_and_goes_once_nobody_holds_or_waits_for_it() -> None:
    """Two tags placing one manifest take turns; the table of locks does not keep a lock per
    manifest of the run once it is placed."""
    mover = BlobMover(slots=BlobSlots(1), floor=Floor(0, 1), retry=RetryPolicy(),
                      on_bytes=lambda n: None, on_outcome=lambda outcome, size: None)
    inside: list[int] = []
    most = [0]

    async def place(n: int) -> None:
        async with mover.manifest_lock("dst", "m/app", "sha256:same"):
            inside.append(n)
            most[0] = max(most[0], len(inside))
            await trio.sleep(0.01)
            inside.remove(n)

    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(place, n)
        await trio.sleep(0.005)
        assert len(mover._placing) == 1
    assert most[0] == 1 and mover._placing == {}
    for n in range(100):
        async with mover.manifest_lock("dst", "m/app", f"sha256:{n}"):
            pass
    assert mover._placing == {}
