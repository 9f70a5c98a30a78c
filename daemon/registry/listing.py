"""Tag and catalog listings: every page, within `global.limits`, on the registry's origin only.

`tags/list` and `_catalog` are paginated with `Link: <...>; rel="next"`; what a Link may point at
and how big a listing may grow are the pure rules of registry/pagination.py. This module sends
the pages (through the transport's `Session`) and reads the names out of each one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace

from ..base.errors import LimitExceededError, RegsyncError, RemoteServerError
from ..oci.jsondoc import TooDeepError, parse_json
from ..oci.reference import quoted_path
from .pagination import ListingLimits, ListingTally, PageRefused, next_page
from .session import Call, Reply, Session, pull

#: tags/list and _catalog pages: distribution caps n at 1000
PAGE_SIZE = 1000
_MAX_PAGES = 100_000


async def list_tags(
    s: Session, repository: str, limits: ListingLimits, *, page_size: int = PAGE_SIZE
) -> list[str]:
    """All tags of `repository`, following `Link: <...>; rel="next"` pages.

    Raises:
        NotFoundError: the repository does not exist.
    """
    call = Call(
        "GET",
        quoted_path(repository, "tags", "list"),
        "tags.list",
        f"tags of {repository}",
        scopes=pull(repository),
        repository=repository,
        params=(("n", str(page_size)),),
    )
    return await _paginate(s, call, "tags", limits)


async def list_catalog(
    s: Session, limits: ListingLimits, *, page_size: int | None = None
) -> list[str]:
    """All repository names the registry lists (many registries restrict `_catalog`);
    `page_size` defaults to PAGE_SIZE, read at call time."""
    names: list[str] = []
    async with aclosing(catalog_pages(s, limits, page_size=page_size)) as pages:
        async for page in pages:
            names.extend(page)
    return names


def catalog_pages(
    s: Session, limits: ListingLimits, *, page_size: int | None = None
) -> AsyncGenerator[list[str], None]:
    """The catalog one page at a time, so a walk over many repositories holds one page."""
    call = Call(
        "GET",
        "/v2/_catalog",
        "catalog.list",
        "repository catalog",
        scopes=("registry:catalog:*",),
        params=(("n", str(page_size or PAGE_SIZE)),),
    )
    return _pages(s, call, "repositories", limits)


async def _paginate(s: Session, call: Call, field: str, limits: ListingLimits) -> list[str]:
    names: list[str] = []
    async with aclosing(_pages(s, call, field, limits)) as pages:
        async for page in pages:
            names.extend(page)
    return names


async def _pages(
    s: Session, call: Call, field: str, limits: ListingLimits
) -> AsyncGenerator[list[str], None]:
    """Every page's names, within `limits`; a Link off the registry's origin (or off the
    listing's path) is refused before anything is fetched from it."""
    seen: set[str] = set()
    tally = ListingTally(limits)
    path = call.url
    while True:
        # one byte over what is left, so a page past the bound is seen as such
        reply = await s.send(replace(call, body_limit=tally.bytes_left))
        following = reply.links.get("next", {}).get("url")
        try:
            tally.add_body(len(reply.body))
            page = _names(s.registry, reply, field, call.what)
            tally.add_names(len(page), has_next=bool(following))
            target = next_page(s.base_url, path, following) if following else None
        except PageRefused as exc:
            raise _refused(s.registry, call.what, exc) from None
        yield page
        if target is None:
            return
        if target in seen or len(seen) >= _MAX_PAGES:
            raise RemoteServerError(
                f"{call.what}: the registry's Link pagination loops", registry=s.registry
            )
        seen.add(target)
        call = replace(call, url=target, params=())


def _refused(registry: str, what: str, exc: PageRefused) -> RegsyncError:
    if exc.limit is None:
        return RemoteServerError(f"{what}: {exc}", registry=registry)
    return LimitExceededError(
        f"{what}: {exc}; stopped there (raise global.limits.{exc.limit} if the repository"
        " really is that large)",
        registry=registry,
    )


def _names(registry: str, reply: Reply, field: str, what: str) -> list[str]:
    try:
        document = parse_json(reply.body)
    except TooDeepError as exc:
        raise RemoteServerError(f"{what}: {exc}", registry=registry) from None
    except ValueError:
        document = None
    values = document.get(field) if isinstance(document, dict) else "invalid"
    if values is None:  # distribution sends "tags": null for a repository without tags
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RemoteServerError(
            f"{what}: the registry's answer is not a JSON object with a {field!r} list",
            registry=registry,
            status=reply.status,
        )
    return values
