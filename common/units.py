"""Byte counts as people read them: one formatter, binary units, for every program that prints.

regsyncctl, the panel and `regsyncd once` all show sizes through `size`, so the same run reads
the same everywhere (1 KiB is 1024 bytes, as registries and `du -h` count).
"""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: float) -> str:
    """Binary units, three significant digits: 0 B, 999 B, 1.5 KiB, 12.3 MiB, 512 GiB."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if abs(value) < 100 else f"{value:.0f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
