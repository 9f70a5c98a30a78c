"""The schedule preview: an expression read as a task's cron_expression is, fired as the
scheduler fires it (UTC, aliases included), bad ones in the config's own words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.config import ConfigProblems, parse_config
from regsync.daemon.runtime.cron import next_fire, preview
from regsync.daemon.values.cron import normalized

NOW = datetime(2026, 1, 1, 22, 30, tzinfo=UTC)


def config_with(cron: str) -> str:
    rule = {"name": "r", "cron_expression": cron,
            "source": {"registry": "a", "repository": "x"},
            "target": {"registry": "b", "repository": "x"}}
    return yaml.safe_dump({"version": "1.0", "registries": {"a": {"url": "https://a.example"},
                                                            "b": {"url": "https://b.example"}},
                           "sync_rules": [rule]})


def config_reading(cron: str) -> str:
    """What the config makes of `cron`: the stored expression, or its one problem."""
    try:
        rule = parse_config(config_with(cron), env={}).rules[0]
    except ConfigProblems as exc:
        return str(exc)
    return rule.cron_expression or ""


@pytest.mark.parametrize("cron", ["0 2 * *", "0 0 2 * * *", "61 2 * * *", "@reboot",
                                  "@Weekly", "  30  4 * * 1 ", "x" * 300, "* * * * MON-FRI",
                                  "0 0 30 2 *", "0 0 29 2 *"])
def test_an_expression_is_read_as_a_task_reads_it(cron: str) -> None:
    try:
        ours = normalized(cron)
    except ConfigError as exc:
        assert config_reading(cron).endswith(f"cron_expression: {exc}")
    else:
        assert config_reading(cron) == ours


def test_fire_times_are_the_schedulers_in_utc() -> None:
    shown = preview("0 2 * * *", NOW, 3)
    assert shown.expression == "0 2 * * *"
    assert shown.times == (datetime(2026, 1, 2, 2, tzinfo=UTC), datetime(2026, 1, 3, 2, tzinfo=UTC),
                           datetime(2026, 1, 4, 2, tzinfo=UTC))
    assert shown.times[0] == next_fire("0 2 * * *", NOW)


def test_aliases_are_accepted_as_the_daemon_accepts_them() -> None:
    """The browser's preview refused `@daily`, which the daemon schedules."""
    shown = preview(" @DAILY ", NOW, 0)
    assert shown.expression == "@daily" and len(shown.times) == 5
    assert shown.times[0] == datetime(2026, 1, 2, tzinfo=UTC)


def test_no_schedule_has_no_fire_times() -> None:
    assert preview("  ", NOW, 5).times == ()


@pytest.mark.parametrize(("cron", "count", "message"), [
    ("61 2 * * *", 5, "cron_expression: invalid cron expression '61 2 * * *'"),
    ("0 2 * *", 5, "cron_expression: '0 2 * *' has 4 fields; expected 5"),
    ("0 0 31 4 *", 5, "cron_expression: '0 0 31 4 *' never fires: that day does not exist"),
    ("0 2 * * *", 51, "count: 51 is not 1 to 50"),
    ("0 2 * * *", -1, "count: -1 is not 1 to 50"),
])
def test_mistakes_name_the_field(cron: str, count: int, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        preview(cron, NOW, count)
    assert str(raised.value).startswith(message)
