"""One tree of errors, split by who is at fault, so every message tells a user what to fix.

    RegsyncError
    ├── ConfigError              our input is wrong (YAML, rule, regex, cron, env var)
    ├── RegistryError            a registry answered, and the answer is the problem
    │   ├── AuthError            credentials missing or refused (401/403)
    │   ├── NotFoundError        repository, tag, manifest or blob unknown (404)
    │   ├── RateLimitError       429 / TOOMANYREQUESTS after retries
    │   ├── UnsupportedError     schema1, oversize manifest, unknown media type
    │   │   └── DeleteRefusedError   the registry refuses deletes (prune: its settings)
    │   ├── DigestMismatchError  bytes do not hash to the digest they claim
    │   ├── InvalidNameError     a name it listed is not a valid tag/reference: never requested
    │   ├── LimitExceededError   an answer beyond our bounds (listing too long, JSON too deep)
    │   ├── UploadRefusedError   a blob body in one request refused (413): upload it in parts
    │   └── RemoteServerError    5xx, HTML pages, invalid JSON and other remote breakage
    ├── NetworkError             could not talk to the registry at all (DNS, refused, reset, timeout)
    │   └── SlowTransferError    a transfer stayed under the throughput floor (temporary)
    ├── CancelledRun             the run was stopped by a user
    ├── PruneStoppedError        a prune a safety rule stopped (over its limit): nothing deleted
    ├── StoreError               the daemon's own store cannot be written (disk full, read-only)
    └── RequestError             a control-plane request cannot be done (maps to a gRPC status)
        ├── UnknownItemError     no registry/task/execution of that name or id (NOT_FOUND)
        ├── DuplicateItemError   the name is taken (ALREADY_EXISTS)
        └── ConflictError        not now: task running, registry in use (FAILED_PRECONDITION)
            └── AlreadyFiredError  this cron tick was fired already (by another daemon)

Every error carries the registry name (as the user configured it) where one is known.
Messages never contain credentials: URLs are redacted before they reach an error.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class RegsyncError(Exception):
    """Base of every error regsync raises on purpose."""

    #: whether retrying the same operation may succeed
    temporary: bool = False

    def __init__(
        self, message: str, *, registry: str | None = None, temporary: bool | None = None
    ) -> None:
        self.registry = registry
        if temporary is not None:  # this error's own verdict, else its class's
            self.temporary = temporary
        super().__init__(message)

    @property
    def kind(self) -> str:
        """Short category name shown to users ("auth", "network", ...)."""
        return _KINDS.get(type(self), "error")

    def __str__(self) -> str:
        text = super().__str__()
        if self.registry and f"registry {self.registry!r}" not in text:
            return f"registry {self.registry!r}: {text}"
        return text


class ConfigError(RegsyncError):
    """The configuration (file, rule or API input) is invalid; nothing was contacted."""


class StoreInUseError(ConfigError):
    """Another regsyncd serves this SQLite store: this one must not start on it (nothing was
    contacted, as for a bad config: exit 2)."""


class RegistryError(RegsyncError):
    """A registry answered, and the answer is the problem."""

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        status: int | None = None,
        codes: tuple[str, ...] = (),
        temporary: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.codes = codes
        #: seconds the registry asked us to wait (its Retry-After header), if it did
        self.retry_after = retry_after
        super().__init__(message, registry=registry, temporary=temporary)


class AuthError(RegistryError):
    """Credentials are missing, wrong, or lack the permission needed."""


class NotFoundError(RegistryError):
    """The repository, tag, manifest or blob does not exist."""


class RateLimitError(RegistryError):
    """The registry kept refusing with 429 after every retry."""

    temporary = True


class UnsupportedError(RegistryError):
    """The registry sent something regsync refuses to copy (schema1, oversize manifest...)."""


class DigestMismatchError(RegistryError):
    """Content does not hash to the digest it was addressed by: the registry lied or bytes broke."""


class InvalidNameError(RegistryError):
    """A registry handed us a name (tag, reference) outside the distribution grammar.

    Such a name is data, never a path: it is reported (escaped) and never put in a URL.
    """


class LimitExceededError(RegistryError):
    """A registry's answer goes beyond a bound regsync keeps (tags per listing, listing bytes,
    JSON nesting); the message names the bound and, where it is configurable, the setting."""


class UploadRefusedError(RegistryError):
    """The registry will not take a blob's body in one request; it wants the chunked upload."""


class NoCatalogError(UnsupportedError):
    """The registry does not list its repositories (`/v2/_catalog` answers 401 or 404, as
    Docker Hub does), so a glob over them cannot be resolved there."""


class DeleteRefusedError(UnsupportedError):
    """The registry refuses to delete manifests (405 / UNSUPPORTED): a setting of the registry,
    not of regsync (distribution's `storage.delete.enabled`, Harbor's immutability or retention
    rules)."""


class RemoteServerError(RegistryError):
    """The registry failed (5xx) or sent something that is not a valid registry answer."""


class NetworkError(RegsyncError):
    """The registry could not be reached or the connection broke."""

    temporary = True


class SlowTransferError(NetworkError):
    """A transfer moved fewer bytes than the throughput floor over its window (a trickling
    registry or link): given up so it frees its slot, and retried like any network failure."""


class CancelledRun(RegsyncError):
    """A user stopped the run."""


class PruneStoppedError(RegsyncError):
    """A prune would delete more target tags than its rule's `prune_max` allows: nothing was
    deleted (a run forced past the limit deletes them)."""


class StoreError(RegsyncError):
    """The daemon's store refused a write (disk full, read-only, I/O error): the host's problem,
    not the request's; the same request may work once the admin frees space."""

    temporary = True


class RequestError(RegsyncError):
    """A control-plane request that cannot be carried out as asked."""


class UnknownItemError(RequestError):
    """No registry, task or execution by that name or id."""


class DuplicateItemError(RequestError):
    """A registry or task of that name exists already."""


class ConflictError(RequestError):
    """The request clashes with the current state (task running, registry in use...)."""


class AlreadyFiredError(ConflictError):
    """A cron tick was fired already, by this daemon or another one sharing the store."""


_KINDS: dict[type, str] = {
    RegsyncError: "error",
    ConfigError: "config",
    RegistryError: "registry",
    AuthError: "auth",
    NoCatalogError: "no-catalog",
    NotFoundError: "not-found",
    RateLimitError: "rate-limit",
    UnsupportedError: "unsupported",
    DigestMismatchError: "digest-mismatch",
    InvalidNameError: "invalid-name",
    LimitExceededError: "limit",
    RemoteServerError: "remote",
    DeleteRefusedError: "delete-refused",
    PruneStoppedError: "prune-limit",
    NetworkError: "network",
    SlowTransferError: "slow",
    CancelledRun: "cancelled",
    StoreError: "store",
    StoreInUseError: "store",
    RequestError: "request",
    UnknownItemError: "not-found",
    DuplicateItemError: "already-exists",
    ConflictError: "conflict",
}


def first_regsync_error(group: BaseExceptionGroup[BaseException]) -> RegsyncError | None:
    """The first error of a nursery's group when every error in it is ours, else None.

    Concurrency wraps failures in groups; a user is owed one reason, not a traceback of a group.
    """
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = exc.exceptions
        else:
            leaves.append(exc)
    if leaves and all(isinstance(e, RegsyncError) for e in leaves):
        first = leaves[0]
        assert isinstance(first, RegsyncError)
        return first
    return None


def redact_url(url: str) -> str:
    """Drop userinfo and query string (pre-signed blob URLs carry credentials there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
