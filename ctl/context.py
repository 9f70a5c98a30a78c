"""What every command handler gets: its arguments, its streams, and a lazily opened daemon.

Streams are injected (not `sys.stdout`) so `main([...], stdout=buf)` drives the whole CLI in a
test; the daemon connection is opened on first use so `completion` and usage errors never dial.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from .client import Daemon, Target


def to_dict(message: Message) -> dict[str, Any]:
    """The stable JSON form: proto field names, every scalar field present, enums by name."""
    return MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class Ctx:
    def __init__(
        self,
        args: argparse.Namespace,
        *,
        target: Target,
        out: TextIO,
        err: TextIO,
        stdin: TextIO,
        environ: Mapping[str, str],
    ) -> None:
        self.args = args
        self.environ = environ
        self.target = target
        self.out = out
        self.err = err
        self.stdin = stdin
        self.json = getattr(args, "output", "table") == "json"
        self._daemon: Daemon | None = None

    @property
    def daemon(self) -> Daemon:
        if self._daemon is None:
            self._daemon = Daemon(self.target)
        return self._daemon

    @property
    def is_tty(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def emit(self, message: Message, text: str) -> None:
        """One JSON document in -o json mode, else the human text."""
        if self.json:
            self.print(json.dumps(to_dict(message), indent=2, sort_keys=True))
        else:
            self.print(text)

    def emit_line(self, message: Message) -> None:
        """One JSON line (for streams in -o json mode)."""
        self.print(json.dumps(to_dict(message), sort_keys=True, separators=(",", ":")))

    def close(self) -> None:
        if self._daemon is not None:
            self._daemon.close()
