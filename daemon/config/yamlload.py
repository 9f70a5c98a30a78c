"""YAML text to plain data: a safe loader that refuses duplicate keys, and (for documents a
client sent) anchors and aliases. Messages never quote the offending line (it may hold a
password)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

from .problems import ConfigProblems

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _Loader(_SafeLoader):
    """A safe loader refusing duplicate keys: YAML keeps the last silently, hiding a pasted twin.

    libyaml's parser where present: the pure-Python one takes seconds on deeply nested junk.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if (key_node.tag, key_node.value) in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)


def refuse_aliases(text: str, source: str) -> None:
    """Raises ConfigProblems at the first anchor or alias; a syntax error is `load_yaml`'s."""
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                mark = event.start_mark
                where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
                message = "YAML anchors and aliases (&name, *name, <<) are not accepted here"
                raise ConfigProblems([f"{source}: {where}{message}; write the values out"])
    except yaml.YAMLError:
        return


def load_yaml(text: str, source: str) -> object:
    # Messages are rebuilt from problem and position only: PyYAML's own text quotes the offending
    # line, which may hold a literal password. `from None` keeps that text out of tracebacks too.
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        raise ConfigProblems(
            [f"{source}: {where}invalid YAML: {exc.problem or exc.context}{context}"]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigProblems([f"{source}: invalid YAML: {exc}"]) from None
    except RecursionError:
        raise ConfigProblems([f"{source}: invalid YAML: nested too deeply"]) from None
    except (ValueError, OverflowError) as exc:  # e.g. a date such as 2024-13-45
        raise ConfigProblems([f"{source}: invalid YAML value: {exc}"]) from None

