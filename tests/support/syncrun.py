"""Run the engine in-process on a seed-format config built from live test registries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from regsync.daemon.config import parse_config
from regsync.daemon.engine.events import Counters, Event, Outcome, discard
from regsync.daemon.engine.plan import TagPlan
from regsync.daemon.engine.report import RunReport
from regsync.daemon.engine.run import Run, open_ports, registries_for, sync
from regsync.daemon.settings import Config


def make_config(
    registries: dict[str, Any], rules: Sequence[dict[str, Any]], *, concurrency: int = 4,
    retry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A seed-format config: `registries` maps names to servers (or URLs)."""
    regs: dict[str, Any] = {}
    for name, server in registries.items():
        entry: dict[str, Any] = {"url": server if isinstance(server, str) else server.url}
        if not isinstance(server, str) and server.password is not None:
            entry |= {"username": server.username, "password": server.password}
        regs[name] = entry
    return {
        "version": "1.0",
        "global": {
            "concurrency": concurrency,
            "retry": retry or {"max_attempts": 2, "initial_interval": "10ms", "max_interval": "50ms"},
            "timeout": "20s",
        },
        "registries": regs,
        "sync_rules": [
            {"enabled": True, **rule, "name": rule.get("name", f"rule{i}")}
            for i, rule in enumerate(rules)
        ],
    }


def rule(src_repo: str, dst_repo: str, **extra: Any) -> dict[str, Any]:
    return {
        "source": {"registry": "src", "repository": src_repo},
        "target": {"registry": "dst", "repository": dst_repo},
        **extra,
    }


def load(data: dict[str, Any]) -> Config:
    return parse_config(yaml.safe_dump(data), source="test.yaml")


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event, counters: Counters) -> None:
        self.events.append(event)


async def run_sync(data: dict[str, Any]) -> RunReport:
    config = load(data)
    return await sync(config.enabled_rules(), config.registries, config.global_, sink=Recorder(), keep_results=True)


def outcomes(report: RunReport) -> dict[str, Outcome]:
    return {r.tag: r.outcome for r in report.results}


async def plan_first_rule(config: Config) -> list[TagPlan]:
    """The dry run of `config`'s first rule (what `check` and PlanTask show)."""
    rule = config.rules[0]
    async with open_ports(config.registries, config.global_, registries_for([rule])) as ports:
        _, plans = await Run(config.global_, config.registries, sink=discard,
                             ports=ports).plan(rule)
    return plans
