"""Registries that stall without failing: no registry can stall the daemon (issue 10).

A source that trickles (a byte every fraction of a second: never a read timeout) is given up
once it stays under the throughput floor, as a temporary failure that is retried; and while it
trickles it cannot take every blob slot: a run from a healthy (real) registry that shares the
daemon's slots keeps moving. The floor's window is set to a second so the tests take seconds.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import httpx
import pytest
import trio
from regsync.daemon.engine.events import (
    Counters,
    Event,
    Outcome,
    TagFinished,
    TagResult,
    discard,
)
from regsync.daemon.engine.report import RunReport
from regsync.daemon.engine.run import sync
from regsync.daemon.engine.slots import BlobSlots
from regsync.daemon.settings import Config
from support.fakeregistry import FakeRegistry
from support.images import manifest_digest, push_image, random_layer
from support.proxy import CountingProxy, Fault, fail_times
from support.registry import RegistryServer
from support.syncrun import load, make_config

pytestmark = pytest.mark.integration


def one_rule(
    source: str, src: Any, repo: str, dst: RegistryServer, limits: dict[str, object]
) -> Config:
    data = make_config({source: src, "dst": dst}, [{
        "source": {"registry": source, "repository": repo},
        "target": {"registry": "dst", "repository": repo},
    }], concurrency=2)
    data["global"]["limits"] = limits
    return load(data)


def tags_of(server: RegistryServer, repo: str) -> list[str]:
    resp = httpx.get(f"{server.url}/v2/{repo}/tags/list")
    return [] if resp.status_code == 404 else list(resp.json()["tags"] or [])


async def test_trickle_under_the_floor_fails_as_temporary_and_is_retried(
    registry2: RegistryServer,
) -> None:
    with FakeRegistry() as fake:
        fake.add_image("app", "1.0", random_layer(3000, seed=50))
        fake.trickle = 0.2  # 5 bytes/s: the layer alone would take ten minutes
        config = one_rule("src", fake.url, "app", registry2,
                          {"min_throughput": 1000, "throughput_window": "1s"})
        start = trio.current_time()
        report = await sync(config.enabled_rules(), config.registries, config.global_, sink=discard, keep_results=True)
        elapsed = trio.current_time() - start
        gets = [p for m, p in fake.requests if m == "GET" and "/blobs/" in p]
    (result,) = report.results
    assert result.outcome is Outcome.FAILED and result.error_kind == "slow", result
    assert "fewer than 1000 bytes/s over 1s" in result.reason, result.reason
    assert "registry 'src'" in result.reason and "global.limits.min_throughput" in result.reason
    assert max(gets.count(p) for p in gets) == 2, gets  # temporary: tried max_attempts times
    assert 1.9 < elapsed < 8.0, elapsed  # two windows, not the trickle's ten minutes
    assert tags_of(registry2, "app") == []


async def test_trickling_image_config_fails_under_the_floor(registry2: RegistryServer) -> None:
    """With a platform filter the config blob is read to learn the platform: floored too."""
    with FakeRegistry() as fake:
        fake.add_image("app", "1.0", random_layer(3000, seed=52))
        fake.trickle = 0.2
        config = one_rule("src", fake.url, "app", registry2,
                          {"min_throughput": 1000, "throughput_window": "1s"})
        config = replace(config, rules=(replace(config.rules[0], architectures=("amd64",)),))
        with trio.fail_after(8):
            report = await sync(config.enabled_rules(), config.registries, config.global_,
                                sink=discard, keep_results=True)
    (result,) = report.results
    assert result.outcome is Outcome.FAILED and result.error_kind == "slow", result
    assert "image config sha256:" in result.reason and "bytes/s over 1s" in result.reason


async def test_a_trickling_source_cannot_hold_every_blob_slot(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    healthy = push_image(registry, "app", "1.0", layers=[random_layer(50_000, seed=51)])
    no_floor = {"min_throughput": 1, "throughput_window": "1h"}  # fairness alone, here
    with FakeRegistry() as fake:
        for i in range(3):  # six blobs that would take every slot
            fake.add_image("slow", f"{i}", random_layer(2000, seed=60 + i))
        fake.trickle = 0.5
        slow = one_rule("trickler", fake.url, "slow", registry2, no_floor)
        fast = one_rule("healthy", registry, "app", registry2, no_floor)
        slots = BlobSlots(2)  # global.concurrency: one set for every run, as the daemon has
        report: RunReport | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(
                sync, slow.enabled_rules(), slow.registries, slow.global_, sink=discard,
                slots=slots))
            with trio.fail_after(10):
                while fake.count("GET", "/blobs/") < 1:
                    await trio.sleep(0.02)
            await trio.sleep(0.5)  # the slow run has queued for every slot it can use
            with trio.move_on_after(20):
                report = await sync(fast.enabled_rules(), fast.registries, fast.global_,
                                    sink=discard, keep_results=True, slots=slots)
            trickling = fake.count("GET", "/blobs/")
            nursery.cancel_scope.cancel()  # the slow run is still stuck: stop it
    assert report is not None, "the healthy run got no blob slot"
    assert [r.outcome for r in report.results] == [Outcome.COPIED], report.results
    assert manifest_digest(registry2, "app", "1.0") == healthy
    assert trickling == 1  # the trickler held one of the two slots, never both
    assert tags_of(registry2, "slow") == []


async def test_a_trickling_rule_cannot_stall_another_rule_of_the_same_run(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    healthy = push_image(registry, "app", "1.0", layers=[random_layer(50_000, seed=53)])
    # the healthy listing comes late, so the trickler asks for every slot first
    late = fail_times(Fault.slow(1.5), 1, "GET", r"/tags/list")
    with FakeRegistry() as fake, CountingProxy(registry, fault=late) as proxy:
        for i in range(3):
            fake.add_image("slow", f"{i}", random_layer(2000, seed=70 + i))
        fake.trickle = 0.5
        data = make_config({"trickler": fake.url, "healthy": proxy, "dst": registry2}, [
            {"name": "slow", "source": {"registry": "trickler", "repository": "slow"},
             "target": {"registry": "dst", "repository": "slow"}},
            {"name": "fast", "source": {"registry": "healthy", "repository": "app"},
             "target": {"registry": "dst", "repository": "app"}},
        ], concurrency=2)
        data["global"]["limits"] = {"min_throughput": 1, "throughput_window": "1h"}
        config = load(data)
        done = trio.Event()
        finished: list[TagResult] = []

        def sink(event: Event, counters: Counters) -> None:
            if isinstance(event, TagFinished):
                finished.append(event.result)
                if event.result.rule == "fast":
                    done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(
                sync, config.rules, config.registries, config.global_, sink=sink))
            with trio.move_on_after(20):
                await done.wait()
            nursery.cancel_scope.cancel()
    assert [(r.rule, r.outcome) for r in finished] == [("fast", Outcome.COPIED)], finished
    assert manifest_digest(registry2, "app", "1.0") == healthy
