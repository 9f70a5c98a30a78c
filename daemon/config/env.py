"""`${VAR}`, `${VAR:-default}` and `$$` substitution, in string values only (after parsing, so a
password full of YAML-special characters is safe); an unset variable is a problem naming it,
never a value."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from .problems import At, ConfigProblems, Report

_VARIABLE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def expand_env(value: str, *, where: str, env: Mapping[str, str] | None = None) -> str:
    """`value` with `${VAR}`, `${VAR:-default}` and `$$` expanded; for references kept in a store.

    Raises:
        ConfigError: (a ConfigProblems) naming `where` and the unset variable, never a value.
    """
    report = Report("", os.environ if env is None else env, "")
    expanded = substitute(value, At(report, "", where))
    if expanded is None:
        raise ConfigProblems(report.problems)
    return expanded


def substitute(text: str, at: At) -> str | None:
    """`${VAR}`, `${VAR:-default}` and `$$` expanded from the environment; None if one is unset."""
    missing = False

    def expand(match: re.Match[str]) -> str:
        nonlocal missing
        body = match.group("body")
        parsed = _VARIABLE_BODY.fullmatch(body) if body is not None else None
        if match.group(0) != "$$" and parsed is None:  # not shown: may be part of a password
            at.problem("invalid variable reference; write ${NAME} or ${NAME:-default}, $$ for a $")
            missing = True
            return ""
        if parsed is not None and not at.report.environment_references:
            name = parsed.group("name")  # the default is not shown: it may be a password
            at.problem(f"${{{name}}} is not expanded here: a document sent to the daemon never "
                       'reads its environment; give the value itself ($$ for a "$"), or let '
                       "regsyncd read the file at start (serve --config)")
            missing = True
            return ""
        if parsed is None:
            return "$"
        value = at.report.env.get(parsed.group("name"))
        if parsed.group("default") is not None and not value:
            return str(parsed.group("default"))
        if value is None:
            name = parsed.group("name")
            at.problem(f"environment variable {name} is not set (used as ${{{name}}})")
            missing = True
            return ""
        return value

    result = _VARIABLE.sub(expand, text)
    return None if missing else result
