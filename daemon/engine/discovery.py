"""A glob rule's repositories, from the source's catalog on every run.

The catalog is listed afresh each time (paginated and bounded like a tag listing, token scope
`registry:catalog:*`), so a repository created since the last run is picked up without anyone
editing the config. Catalog names are the source's data: names outside the distribution grammar
are skipped (shown escaped), never requested.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from ..base.errors import AuthError, NoCatalogError, NotFoundError
from ..base.safetext import SHOWN_MAX, escape_controls
from ..oci.port import RegistryPort
from ..settings import Endpoint, SyncRule
from ..values.globs import Scope, scope

#: said whenever a catalog cannot be had: what the user can do instead
SEPARATE_RULES = "list those repositories as separate rules (one repository each) instead"


async def discover(registry: RegistryPort, rule: SyncRule) -> Scope:
    """The repositories `rule`'s source glob matches in `registry`'s catalog right now.

    Raises:
        NoCatalogError: the registry answers 401 or 404 to `/v2/_catalog` (Docker Hub does).
        RegsyncError: any other failure of the listing.
    """
    try:
        names = await registry.list_catalog()
    except (AuthError, NotFoundError) as exc:
        status = getattr(exc, "status", None) or ("401" if isinstance(exc, AuthError) else "404")
        raise NoCatalogError(
            f"rule {rule.name!r}: source.repository {rule.source.repository!r} is a glob, but the"
            f" registry does not list its repositories (/v2/_catalog answered {status}); "
            + SEPARATE_RULES,
            registry=registry.name,
        ) from None
    return scope(names, rule.source.repository, rule.target.repository, rule.source.exclude)


def concrete_rules(rule: SyncRule, found: Scope) -> Iterator[SyncRule]:
    """One plain rule per matched repository, named as the glob rule (one task, one run)."""
    for source, target in found.pairs:
        yield dataclasses.replace(
            rule,
            source=Endpoint(rule.source.registry, source),
            target=Endpoint(rule.target.registry, target),
        )


def shown_names(names: tuple[str, ...], most: int = 5) -> str:
    """A few names for a log line, escaped and cut (they are the registry's data)."""
    shown = ", ".join(f"'{escape_controls(n)[:SHOWN_MAX]}'" for n in names[:most])
    return shown + (", ..." if len(names) > most else "")
