"""A glob rule's repositories, from the source's catalog on every run.

The catalog is listed afresh each time (paginated and bounded like a tag listing, token scope
`registry:catalog:*`), so a repository created since the last run is picked up without anyone
editing the config. It is walked one page at a time, and each matching repository is handed
on as soon as its page arrives: memory holds one page, whatever the catalog's size. Catalog
names are the source's data: names outside the distribution grammar are skipped (shown
escaped), never requested.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from contextlib import aclosing

from ..base.errors import AuthError, NoCatalogError, NotFoundError
from ..base.safetext import SHOWN_MAX, escape_controls
from ..oci.port import RegistryPort
from ..settings import Endpoint, SyncRule
from ..values.globs import Scope, ScopeWalk

#: said whenever a catalog cannot be had: what the user can do instead
SEPARATE_RULES = "list those repositories as separate rules (one repository each) instead"


class Discovery:
    """One walk of a glob rule's catalog: `repositories()` streams the plain rules, and
    `summary()` tells what was left out (`complete` once the last page was read)."""

    def __init__(self, registry: RegistryPort, rule: SyncRule) -> None:
        self._registry = registry
        self._rule = rule
        self._walk = ScopeWalk(rule.source.repository, rule.target.repository,
                               rule.source.exclude)
        self.complete = False

    @property
    def matched(self) -> int:
        return self._walk.matched

    def summary(self) -> Scope:
        return self._walk.summary()

    async def repositories(self) -> AsyncGenerator[SyncRule, None]:
        """One plain rule per matched repository, named as the glob rule, in catalog order.

        Raises:
            NoCatalogError: the registry answers 401 or 404 to `/v2/_catalog` (Docker Hub does).
            RegsyncError: any other failure of the listing (the repositories handed on before
                it stand; `complete` stays False).
        """
        rule = self._rule
        async with aclosing(self._registry.catalog_pages()) as pages:
            while True:
                try:
                    page = await anext(pages)
                except StopAsyncIteration:
                    break
                except (AuthError, NotFoundError) as exc:
                    raise self._no_catalog(exc) from None
                for source, target in self._walk.feed(page):
                    yield dataclasses.replace(rule, source=Endpoint(rule.source.registry, source),
                                              target=Endpoint(rule.target.registry, target))
        self.complete = True

    def _no_catalog(self, exc: AuthError | NotFoundError) -> NoCatalogError:
        status = getattr(exc, "status", None) or ("401" if isinstance(exc, AuthError) else "404")
        return NoCatalogError(
            f"rule {self._rule.name!r}: source.repository {self._rule.source.repository!r} is a"
            f" glob, but the registry does not list its repositories (/v2/_catalog answered"
            f" {status}); " + SEPARATE_RULES,
            registry=self._registry.name,
        )


def left_out(found: Scope) -> list[str]:
    """Warnings for the catalog names a walk skipped (escaped: they are the registry's)."""
    lines: list[str] = []
    if found.invalid_count:
        lines.append(f"{found.invalid_count} catalog names are not valid repository names,"
                     f" skipped and never requested:"
                     f" {shown_names(found.invalid, total=found.invalid_count)}")
    if found.unmappable_count:
        lines.append(f"{found.unmappable_count} repositories map to an invalid target name,"
                     f" skipped: {shown_names(found.unmappable, total=found.unmappable_count)}")
    if found.repeated:
        lines.append(f"{found.repeated} matching catalog names were listed again, skipped (each"
                     " repository is copied once)")
    return lines


def shown_names(names: tuple[str, ...], most: int = 5, total: int | None = None) -> str:
    """A few names for a log line, escaped and cut (they are the registry's data)."""
    shown = ", ".join(f"'{escape_controls(n)[:SHOWN_MAX]}'" for n in names[:most])
    more = len(names) > most or (total is not None and total > len(names))
    return shown + (", ..." if more else "")
