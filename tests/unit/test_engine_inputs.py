"""What the engine takes (issue 11): rules, the registries' settings, the global settings and a
way to open ports, not a whole Config. Pure: the ports here are stand-ins, no sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import trio
from regsync.daemon.engine.events import discard
from regsync.daemon.engine.run import sync
from regsync.daemon.oci.port import RegistryPort
from regsync.daemon.settings import (
    Endpoint,
    GlobalSettings,
    RegistrySettings,
    SyncRule,
    TagFilter,
)


class _Listing:
    """Just enough of a port for a rule whose filters keep nothing: the tag listing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def list_tags(self, repository: str) -> list[str]:
        return ["1.0", "latest"]


def test_sync_opens_each_registry_once_through_the_given_opener() -> None:
    registries = {"src": RegistrySettings("src", "https://src.example"),
                  "dst": RegistrySettings("dst", "https://dst.example")}
    global_ = GlobalSettings(concurrency=2)
    rules = [SyncRule(f"r{n}", Endpoint("src", f"a{n}"), Endpoint("dst", f"b{n}"),
                      tags=TagFilter(include=("^none$",)), referrers=False) for n in range(2)]
    opened: list[tuple[RegistrySettings, GlobalSettings]] = []
    ports: list[_Listing] = []

    @asynccontextmanager
    async def open_port(settings: RegistrySettings,
                        given: GlobalSettings) -> AsyncIterator[RegistryPort]:
        opened.append((settings, given))
        port = _Listing(settings.name)
        ports.append(port)
        try:
            yield cast(RegistryPort, port)
        finally:
            port.closed = True

    report = trio.run(lambda: sync(rules, registries, global_, sink=discard, open_port=open_port))
    assert report.ok and report.results == [] and report.counters.tags_total == 0
    assert opened == [(registries["src"], global_), (registries["dst"], global_)]
    assert [p.closed for p in ports] == [True, True]
