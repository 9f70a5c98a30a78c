"""Problem reports: every problem of a document found at once, one self-contained line each,
naming the source, the item (a rule or registry) and the dotted field."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from ..base.errors import ConfigError

#: one problem line at most this long, whatever a message quotes (a last line of defence)
LINE_MAX = 2000


class ConfigProblems(ConfigError):
    """Every problem found in one config; `problems` holds one self-contained line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} configuration problems:\n" + "\n".join(problems)
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ConfigProblems], tuple[list[str]]]:
        return type(self), (self.problems,)


class Report:
    """Collects problem lines; also carries what every check needs (source, env, base dir)."""

    def __init__(self, source: str, env: Mapping[str, str], base_dir: str) -> None:
        self.source = source
        self.env = env
        self.base_dir = base_dir
        self.environment_references = True
        self.known_registries: list[str] = []
        self.problems: list[str] = []


_LINE_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class At:
    """Where a value sits: the item (a rule or registry label) and the dotted field inside it."""

    __slots__ = ("item", "path", "report")

    def __init__(self, report: Report, item: str, path: str = "") -> None:
        self.report, self.item, self.path = report, item, path

    def key(self, name: str) -> At:
        return At(self.report, self.item, f"{self.path}.{name}" if self.path else name)

    def index(self, position: int) -> At:
        return At(self.report, self.item, f"{self.path}[{position}]")

    def problem(self, message: str) -> None:
        where = [part for part in (self.report.source, self.item, self.path) if part]
        # One line per problem, whatever a quoted key or value contains.
        line = _LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], ": ".join([*where, message]))
        if len(line) > LINE_MAX:
            line = f"{line[: LINE_MAX - 40]}... ({len(line) - LINE_MAX + 40} characters cut)"
        self.report.problems.append(line)

    def count(self) -> int:
        return len(self.report.problems)


def kind(value: object) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "mapping"}
    return "null" if value is None else names.get(type(value), type(value).__name__)



def shortened(text: str, keep: int = 64) -> str:
    """`text` cut to `keep` characters for a message, saying how long it was."""
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text)} characters)"



def one_of(choice: str, known: list[str], what: str) -> str:
    """ "; known X: a, b" with a did-you-mean when one is close: typos are the usual cause."""
    close = difflib.get_close_matches(choice, known, n=1)
    listed = ", ".join(known) or "none"
    return (f"; did you mean {close[0]!r}?" if close else "") + f" (known {what}: {listed})"

