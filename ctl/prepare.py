"""What `regsyncctl apply` does to a file before sending it: the client's side of Apply's rules.

The daemon takes an applied document literally and refuses YAML anchors (a few KB of aliases
expand to gigabytes) and `${VAR}` (a client must never make the daemon read its environment).
A user's own file may hold both, and expanding them is safe here, on the user's machine with
the user's environment. So, on request (`--expand-env`) `${NAME}`, `${NAME:-default}` and `$$`
are expanded from this process's environment, and a document with anchors is sent with them
written out. Expanded values are sent with every `$` doubled, so the daemon reads them as they
are. A document needing neither is sent byte for byte, so the daemon's line numbers match it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import yaml

from .client import EXIT_USAGE, CtlError

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\$\{")


class _Flat(yaml.SafeDumper):
    """Writes every shared node out again instead of as an alias."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def prepare(text: str, *, source: str, expand_env: bool, environ: Mapping[str, str]) -> str:
    """The document to send for `text`.

    Raises:
        CtlError: the YAML cannot be parsed, or a variable is unset or malformed (`--expand-env`).
    """
    if not expand_env and not _has_anchors(text):
        return text
    document = _load(text, source)
    if expand_env:
        document = _expand(document, "", source, environ)
    dumped: str = yaml.dump(document, Dumper=_Flat, sort_keys=False, allow_unicode=True)
    return dumped


def _has_anchors(text: str) -> bool:
    try:
        return any(isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)
                   for event in yaml.parse(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return False  # sent as it is: the daemon reports the syntax error with its position


def _load(text: str, source: str) -> object:
    # Rebuilt from problem and position: PyYAML's own message quotes the line (maybe a password)
    try:
        return yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise CtlError(f"{source}: {where}invalid YAML: {exc.problem or exc.context}",
                       EXIT_USAGE) from None
    except yaml.YAMLError:
        raise CtlError(f"{source}: invalid YAML", EXIT_USAGE) from None


def _expand(node: object, path: str, source: str, environ: Mapping[str, str]) -> object:
    if isinstance(node, dict):
        return {key: _expand(value, f"{path}.{key}" if path else str(key), source, environ)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_expand(item, f"{path}[{i}]", source, environ) for i, item in enumerate(node)]
    if isinstance(node, str):
        return _expand_text(node, f"{source}: {path}", environ).replace("$", "$$")
    return node


def _expand_text(text: str, where: str, environ: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name")
        if name is None:
            raise CtlError(f"{where}: invalid variable reference; write ${{NAME}} or "
                           "${NAME:-default}, $$ for a $", EXIT_USAGE)
        value = environ.get(name)
        default = match.group("default")
        if default is not None and not value:
            return default
        if value is None:  # the default is never shown: it may be a password
            raise CtlError(f"{where}: environment variable {name} is not set "
                           f"(used as ${{{name}}})", EXIT_USAGE)
        return value

    return _VARIABLE.sub(one, text)
