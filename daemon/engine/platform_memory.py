"""The platforms of single-platform images, by manifest digest, remembered across runs.

A tag holding one image (not an index) says its platform only in its config blob, so a rule
with a platform filter had to GET the manifest and the config on every run to skip an image of
an unwanted platform, and Docker Hub counts that GET. A digest names content, so what it says
never goes stale: once learnt, a HEAD of the tag is enough to skip it again.

`regsyncd once` keeps the memory in a small JSON file under the user's cache directory, the
daemon beside its store. Losing the file costs one GET per such tag.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from ..values.platform import Platform, parse_platform

_log = logging.getLogger(__name__)

#: entries kept at most (oldest learnt dropped first): ~100 bytes each on disk
LIMIT = 50_000


class PlatformMemory:
    """digest -> platform, optionally loaded from and saved to `path`."""

    def __init__(self, path: Path | None = None, *, limit: int = LIMIT) -> None:
        self.path = path
        self._limit = limit
        self._platforms: dict[str, str] = {}
        self._changed = False

    @classmethod
    def load(cls, path: Path) -> PlatformMemory:
        """The memory saved at `path`; empty when there is none or it cannot be read."""
        memory = cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return memory
        except (OSError, ValueError) as exc:
            _log.warning("ignoring the platform cache %s: %s", path, exc)
            return memory
        if isinstance(data, dict):
            memory._platforms = {
                k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)
            }
        return memory

    def get(self, digest: str) -> Platform | None:
        text = self._platforms.get(digest)
        if text is None:
            return None
        try:
            return parse_platform(text)
        except ValueError:
            return None

    def remember(self, digest: str, platform: Platform) -> None:
        text = str(platform)
        if self._platforms.get(digest) == text:
            return
        self._platforms[digest] = text
        while len(self._platforms) > self._limit:
            del self._platforms[next(iter(self._platforms))]
        self._changed = True

    def save(self) -> None:
        """Write the file (atomically) if anything was learnt; a failure is only logged."""
        if self.path is None or not self._changed:
            return
        temp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".platforms-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._platforms, out)
            os.replace(temp, self.path)
        except OSError as exc:
            _log.warning("could not save the platform cache %s: %s", self.path, exc)
            if temp is not None:
                Path(temp).unlink(missing_ok=True)
            return
        self._changed = False


def default_path() -> Path:
    """$XDG_CACHE_HOME/regsync/platforms.json (~/.cache when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "regsync" / "platforms.json"
