"""The typed values the daemon runs on: rules, registries, globals, webhooks. The ground floor.

Frozen values with defaults and units, built once at the edge (the YAML loader in `config`, the
API's inbound conversion, the store) and passed down: the engine, the store and the API import
these, never the YAML front door. Secrets never appear in reprs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .base.errors import ConfigError
from .values.globs import has_wildcards
from .values.platform import Platform, parse_platform
from .values.prunelimit import DEFAULT_LIMIT, PruneLimit
from .values.tagregex import TagRegex, compile_tag_regex
from .values.versions import VersionRange

#: why a registry's ca_file is refused, at load time (config) and at connect time (registry)
CA_FILE_UNREADABLE = (
    "cannot be read (it must be a PEM file of CA certificates on the daemon's machine)"
)

@dataclass(frozen=True, slots=True)
class RetrySettings:
    max_attempts: int = 5
    initial_interval: float = 1.0  # seconds
    max_interval: float = 30.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a registry can make regsync hold or wait for (`global.limits`).

    The defaults fit the largest real repositories (a few hundred thousand tags) with room.
    """

    max_tags: int = 1_000_000  # names in one tag listing (or catalog), all pages together
    max_listing_bytes: int = 256 * 1024 * 1024  # body bytes of one listing, all pages together
    min_throughput: int = 10 * 1024  # bytes/s a blob transfer must average over the window
    throughput_window: float = 60.0  # seconds


@dataclass(frozen=True, slots=True)
class GlobalSettings:
    concurrency: int = 5  # blobs in flight (>= 1)
    retry: RetrySettings = RetrySettings()
    timeout: float = 600.0  # seconds; limit for one registry operation
    limits: Limits = Limits()

    @property
    def tags_in_flight(self) -> int:
        """Tags a run checks at once: each costs one HEAD per side until it needs blobs, and
        blobs wait for `concurrency`, so many in flight make a no-op re-run fast (measured:
        a 500-tag no-op took ~15 % less time with 40 than with 20)."""
        return max(32, 4 * self.concurrency)

    @property
    def connections_per_registry(self) -> int:
        """Enough that no tag in flight and no blob transfer waits for a connection."""
        return self.tags_in_flight + self.concurrency


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    name: str
    url: str  # normalised: scheme://host[:port], no trailing slash, no path
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False  # skip TLS verification
    ca_file: str | None = None  # absolute path
    qps: float | None = None  # ratelimit.qps

    @property
    def host(self) -> str:
        """ "host[:port]", the key docker config.json and auth.json store credentials under."""
        return self.url.split("://", 1)[1]

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")


@dataclass(frozen=True, slots=True)
class Endpoint:
    registry: str  # a key of Config.registries
    repository: str  # validated OCI repository name, or a glob over them (engine/globs.py)
    exclude: tuple[str, ...] = ()  # source of a glob rule only: repositories (globs) left out

    @property
    def is_glob(self) -> bool:
        return has_wildcards(self.repository)


@dataclass(frozen=True, slots=True)
class TagFilter:
    """A rule's tag filters as written, and parsed once when the filter is built: the engine runs
    `includes`, `excludes` and `version_range`, never the strings (a filter that exists runs).

    Raises:
        TagRegexError: a pattern is not RE2 (a ValueError).
        ValueError: `semver` is not a version range.
    """

    include: tuple[str, ...] = ()  # RE2 regexes, unanchored (search); empty = all tags
    exclude: tuple[str, ...] = ()  # regexes; a tag matching any is dropped
    semver: str | None = None  # range such as ">=1.20 <2"
    latest: int | None = None  # of what remains, the newest N
    includes: tuple[TagRegex, ...] = field(init=False, repr=False, compare=False)
    excludes: tuple[TagRegex, ...] = field(init=False, repr=False, compare=False)
    version_range: VersionRange | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # frozen: the parsed forms are set once, here, from the fields they are derived from
        object.__setattr__(self, "includes", tuple(map(compile_tag_regex, self.include)))
        object.__setattr__(self, "excludes", tuple(map(compile_tag_regex, self.exclude)))
        parsed = VersionRange.parse(self.semver) if self.semver is not None else None
        object.__setattr__(self, "version_range", parsed)


@dataclass(frozen=True, slots=True)
class SyncRule:
    name: str
    source: Endpoint
    target: Endpoint
    tags: TagFilter = TagFilter()
    architectures: tuple[str, ...] = ()  # the seed's form: "amd64", "arm64"
    platforms: tuple[str, ...] = ()  # extension: "linux/arm/v7"
    enabled: bool = True
    cron_expression: str | None = None
    #: signatures, SBOMs and attestations follow the manifests the rule copies (engine/referrers.py)
    referrers: bool = True
    #: after the copies, delete the target's tags the selection lacks (engine/prune.py)
    prune: bool = False
    #: a prune deleting more than this stops instead (a count, or a percent of the target's tags)
    prune_max: PruneLimit = DEFAULT_LIMIT
    #: `referrers: {artifact_types: [...]}`: only referrers of these artifact types; empty = all
    referrer_types: tuple[str, ...] = ()
    #: `platforms` parsed once, when the rule is built (ValueError for one that is not a platform)
    parsed_platforms: tuple[Platform, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = tuple(map(parse_platform, self.platforms))
        object.__setattr__(self, "parsed_platforms", parsed)  # frozen: set once, here


#: what a webhook can be told about (`notifications[].events`)
NOTIFICATION_EVENTS = ("execution.succeeded", "execution.failed", "execution.stopped", "task.stale")
NOTIFICATION_FORMATS = ("json", "slack")


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """One webhook: POST the events it names (for the tasks it names, or all) to `url`."""

    name: str
    url: str  # http(s), no credentials in it; a path and query are the receiver's business
    events: tuple[str, ...]
    tasks: tuple[str, ...] = ()  # empty: every task
    secret: str | None = field(default=None, repr=False)  # HMAC-SHA256 key of the signature
    format: str = "json"


@dataclass(frozen=True, slots=True)
class Config:
    version: str
    global_: GlobalSettings
    registries: Mapping[str, RegistrySettings] = field(hash=False)
    rules: tuple[SyncRule, ...]
    notifications: tuple[NotificationSettings, ...] = ()

    def rule(self, name: str) -> SyncRule:
        """The rule called `name`; ConfigError listing the known rules otherwise."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        known = ", ".join(f'"{r.name}"' for r in self.rules) or "none"
        raise ConfigError(f'unknown sync rule "{name}"; known rules: {known}')

    def enabled_rules(self) -> tuple[SyncRule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)
