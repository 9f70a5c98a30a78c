"""What a glob would cover, before it is saved: the first repositories it matches, each with its
tag count and how many the filters keep (the panel's wizard shows it as the user types).

Bounded whatever the catalog holds: the walk stops once `limit` repositories matched and one
more proves there are others (`truncated`), and their tags are listed LISTINGS_IN_FLIGHT at a
time. A repository whose listing fails is shown with its error, not as a failed preview.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass

import trio

from ..base.errors import RegsyncError
from ..oci.port import RegistryPort
from ..settings import SyncRule
from .discovery import Discovery
from .filters import INVALID_TAG, rule_tags
from .run import LISTINGS_IN_FLIGHT

#: the most repositories one preview lists the tags of (a larger limit is cut to it)
PREVIEW_MAX = 200
PREVIEW_DEFAULT = 50


@dataclass(frozen=True, slots=True)
class RepositoryPreview:
    source: str
    target: str
    tags: int = 0  # listed at the source (valid tag names)
    kept: int = 0  # of those, what the rule's filters keep
    error: str = ""  # its listing failed: why


@dataclass(frozen=True, slots=True)
class ScopePreview:
    repositories: tuple[RepositoryPreview, ...]
    truncated: bool  # more repositories match than were previewed
    limit: int  # how many at most were previewed


def preview_limit(asked: int) -> int:
    """0 means the default; more than PREVIEW_MAX is cut to it (a bound, not an error)."""
    return min(asked or PREVIEW_DEFAULT, PREVIEW_MAX)


async def preview_scope(registry: RegistryPort, rule: SyncRule, limit: int) -> ScopePreview:
    """The first `limit` repositories `rule`'s glob matches in `registry`'s catalog now.

    Raises:
        NoCatalogError: the registry keeps its catalog to itself.
        RegsyncError: the catalog listing failed.
    """
    walk = Discovery(registry, rule)
    found: list[SyncRule] = []
    truncated = False
    async with aclosing(walk.repositories()) as repositories:
        async for matched in repositories:
            if len(found) == limit:
                truncated = True
                break
            found.append(matched)
    shown: list[RepositoryPreview | None] = [None] * len(found)
    limiter = trio.CapacityLimiter(LISTINGS_IN_FLIGHT)

    async def one(index: int, plain: SyncRule) -> None:
        async with limiter:
            shown[index] = await _preview_one(registry, plain)

    async with trio.open_nursery() as nursery:
        for index, plain in enumerate(found):
            nursery.start_soon(one, index, plain)
    return ScopePreview(tuple(p for p in shown if p is not None), truncated, limit)


async def _preview_one(registry: RegistryPort, rule: SyncRule) -> RepositoryPreview:
    source, target = rule.source.repository, rule.target.repository
    try:
        listed = await registry.list_tags(source)
    except RegsyncError as exc:
        return RepositoryPreview(source, target, error=f"[{exc.kind}] {exc}")
    # linear-time regexes, but many tags times many patterns is CPU: not on the trio thread
    selection = await trio.to_thread.run_sync(rule_tags, rule, listed)
    invalid = sum(1 for _, why in selection.dropped if why == INVALID_TAG)
    return RepositoryPreview(source, target, len(listed) - invalid, len(selection.kept))
