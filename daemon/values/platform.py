"""Platforms ("os/architecture[/variant]"): the value rules select by and manifests describe.

On the ground floor because a rule's settings hold their platforms parsed, and the registry's
content model describes images with the same value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)


def parse_platform(text: str) -> Platform:
    """Parse "os/architecture[/variant]" as written in rules ("linux/arm64", "linux/arm/v7").

    Raises:
        ValueError: not two or three non-empty parts separated by "/".
    """
    parts = text.split("/")
    if not 2 <= len(parts) <= 3 or not all(p and p == p.strip() for p in parts):
        raise ValueError(
            f"invalid platform {text!r}: expected os/architecture[/variant], e.g. linux/arm64"
        )
    return Platform(*parts)
