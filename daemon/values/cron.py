"""A cron expression as a task stores it: five fields or an alias, checked once, in one place.

The config (a rule's `cron_expression`), the API (CreateTask, PreviewSchedule) and the scheduler
all read an expression through `normalized`, so what the panel previews is what the daemon
accepts and fires.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..base.errors import ConfigError

#: the aliases a task may use instead of five fields (croniter's, less `@reboot`)
ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
EXPRESSION_MAX = 256  # characters, as a task's cron_expression
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # a leap year's start: Feb 29 fires within 4 years


def normalized(text: str) -> str:
    """`text` as a task stores it (spaces collapsed, an alias lower-cased); "" = no schedule.

    Raises:
        ConfigError: the message a task's `cron_expression` gets for the same text.
    """
    if len(text) > EXPRESSION_MAX:
        raise ConfigError(f"is {len(text)} characters long; the limit is {EXPRESSION_MAX}")
    expression = " ".join(text.split())
    if not expression:
        return ""
    if expression.startswith("@"):
        if expression.lower() not in ALIASES:
            raise ConfigError(f"unknown schedule {text!r}; known: {', '.join(ALIASES)}")
        return expression.lower()
    count = len(expression.split())
    if count != 5:
        raise ConfigError(
            f"{text!r} has {count} fields; expected 5 "
            '(minute hour day-of-month month day-of-week), e.g. "0 2 * * *"'
        )
    # imported here: croniter costs ~50 ms, and only rules with a schedule need it
    from croniter import CroniterBadDateError, croniter

    if not croniter.is_valid(expression):
        raise ConfigError(f"invalid cron expression {text!r}")
    try:  # valid fields can still name a date no year has (Feb 30): the scheduler would fail
        croniter(expression, _EPOCH).get_next(datetime)
    except (CroniterBadDateError, ValueError):
        raise ConfigError(
            f"{text!r} never fires: that day does not exist in that month (e.g. 30 February)"
        ) from None
    return expression
