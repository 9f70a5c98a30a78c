"""The seed's YAML config, loaded once at the edge into typed, frozen values.

Everything is validated up front and every problem is reported at once, one line each, naming the
file, the rule or registry, the dotted field and what is wrong: a user fixes the file in one pass
instead of one error per run. `${VAR}` is substituted after YAML parsing, in string values only,
so a password full of YAML-special characters is safe; secrets never appear in messages or reprs.

The format is the seed's (see configs/sync.example.yaml); extensions are optional keys
(`tags.semver`, `platforms`, `insecure`, `ca_file`) and `${VAR:-default}`.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import ssl
import stat
import types
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from .durations import duration_seconds
from .engine.globs import GlobError, check_glob, check_mapping, has_wildcards
from .engine.tagregex import TagRegexError, compile_tag_regex
from .engine.versions import VersionRange
from .errors import ConfigError

SUPPORTED_VERSION = "1.0"

# Limits: the longest value accepted per field, in characters. A longer value is refused on its
# length alone and never echoed, so a megabyte pasted by mistake (or sent by a hostile API client)
# is turned away at once instead of coming back in every message, log line and reply.
REGISTRY_NAME_MAX = 63  # the proto's promise: 1-63 of [A-Za-z0-9-_.]
RULE_NAME_MAX = 128  # printable, no control characters, no surrounding spaces
REPOSITORY_MAX = 255  # distribution refuses longer names (reference.NameTotalLengthMax)
PATTERN_MAX = 1024  # OCI tags are at most 128 characters: a longer regex is a mistake
LIST_MAX = 256  # entries of include, exclude, architectures, platforms
TEXT_MAX = 4096  # any other string
RULES_MAX = 10_000  # sync_rules in one document
APPLIED_BYTES_MAX = 1024 * 1024  # a document sent to the daemon (Apply), UTF-8 encoded
_FIELD_MAX = {
    "name": RULE_NAME_MAX,
    "registry": REGISTRY_NAME_MAX,
    "repository": REPOSITORY_MAX,
    "include": PATTERN_MAX,
    "exclude": PATTERN_MAX,
    "url": 2048,
    "username": 1024,
    "password": 65536,  # registry tokens used as passwords (ECR, GCR) run to a few KiB
    "semver": 256,
    "cron_expression": 256,
    "architectures": 64,
    "platforms": 128,
}
#: one problem line at most this long, whatever a message quotes (a last line of defence)
_LINE_MAX = 2000


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
    include: tuple[str, ...] = ()  # RE2 regexes, unanchored (search); empty = all tags
    exclude: tuple[str, ...] = ()  # regexes; a tag matching any is dropped
    semver: str | None = None  # range such as ">=1.20 <2"
    latest: int | None = None  # of what remains, the newest N


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
    #: `referrers: {artifact_types: [...]}`: only referrers of these artifact types; empty = all
    referrer_types: tuple[str, ...] = ()


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


class ConfigProblems(ConfigError):
    """Every problem found in one config; `problems` holds one self-contained line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(problems) == 1:
            message = problems[0]
        else:
            message = f"{len(problems)} configuration problems:\n" + "\n".join(problems)
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ConfigProblems], tuple[list[str]]]:
        return type(self), (self.problems,)


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at `path` (relative `ca_file`s are relative to it).

    Raises:
        ConfigError: (a ConfigProblems) the file is unreadable or invalid; lists every problem.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigProblems([f"{source}: cannot read the config file: {reason}"]) from None
    base_dir = os.path.dirname(os.path.abspath(source))
    return parse_config(text, source=source, env=env, base_dir=base_dir)


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    base_dir: str | None = None,
    environment_references: bool = True,
    known_registries: Collection[str] = (),
) -> Config:
    """Validate config `text`; `source` names it in messages, `env` defaults to os.environ.

    `known_registries` are names rules may use beyond the document's own (the daemon's store,
    when a file is applied to it).

    `environment_references` False refuses `${VAR}` (`$$` still means "$"): for a document a
    client sent, which must never make the daemon read its own environment.

    Raises:
        ConfigError: (a ConfigProblems) listing every problem found.
    """
    document = _load_yaml(text, source)
    environment = os.environ if env is None else env
    report = _Report(source, environment, base_dir or os.getcwd())
    report.environment_references = environment_references
    report.known_registries = [n for n in known_registries]
    root = _At(report, "")
    if document is None:
        root.problem("the file is empty; expected a mapping with version, registries, sync_rules")
    elif not isinstance(document, dict):
        root.problem(f"the top level must be a mapping, got {_kind(document)}")
    if not isinstance(document, dict):
        raise ConfigProblems(report.problems)
    config = _config(document, report)
    if report.problems:
        raise ConfigProblems(report.problems)
    return config


def parse_applied(text: str, *, source: str, known_registries: Collection[str] = ()) -> Config:
    """`parse_config` for a document an API client sent (`regsyncctl apply`): hostile input.

    On top of the file checks: at most `APPLIED_BYTES_MAX` bytes, and no YAML anchors or aliases
    (a few KB of nested aliases expand to gigabytes of work; files the daemon reads itself at
    start may keep them); `${VAR}` is refused, so the daemon's environment is never read for a
    client. CPU-bound: run it off the trio thread.

    Raises:
        ConfigError: (a ConfigProblems) listing every problem found.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > APPLIED_BYTES_MAX:
        raise ConfigProblems(
            [f"{source}: the document is {size} bytes; the limit is {APPLIED_BYTES_MAX}"]
        )
    _refuse_aliases(text, source)
    return parse_config(text, source=source, env={}, environment_references=False,
                        known_registries=known_registries)


# Reporting -----------------------------------------------------------------------------------


class _Report:
    """Collects problem lines; also carries what every check needs (source, env, base dir)."""

    def __init__(self, source: str, env: Mapping[str, str], base_dir: str) -> None:
        self.source = source
        self.env = env
        self.base_dir = base_dir
        self.environment_references = True
        self.known_registries: list[str] = []
        self.problems: list[str] = []


_LINE_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class _At:
    """Where a value sits: the item (a rule or registry label) and the dotted field inside it."""

    __slots__ = ("item", "path", "report")

    def __init__(self, report: _Report, item: str, path: str = "") -> None:
        self.report, self.item, self.path = report, item, path

    def key(self, name: str) -> _At:
        return _At(self.report, self.item, f"{self.path}.{name}" if self.path else name)

    def index(self, position: int) -> _At:
        return _At(self.report, self.item, f"{self.path}[{position}]")

    def problem(self, message: str) -> None:
        where = [part for part in (self.report.source, self.item, self.path) if part]
        # One line per problem, whatever a quoted key or value contains.
        line = _LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], ": ".join([*where, message]))
        if len(line) > _LINE_MAX:
            line = f"{line[: _LINE_MAX - 40]}... ({len(line) - _LINE_MAX + 40} characters cut)"
        self.report.problems.append(line)

    def count(self) -> int:
        return len(self.report.problems)


def _kind(value: object) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "mapping"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# YAML ----------------------------------------------------------------------------------------


try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _Loader(_SafeLoader):
    """A safe loader refusing duplicate keys: YAML keeps the last silently, hiding a pasted twin.

    libyaml's parser where present: the pure-Python one takes seconds on deeply nested junk.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if (key_node.tag, key_node.value) in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)


def _refuse_aliases(text: str, source: str) -> None:
    """Raises ConfigProblems at the first anchor or alias; a syntax error is `_load_yaml`'s."""
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                mark = event.start_mark
                where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
                message = "YAML anchors and aliases (&name, *name, <<) are not accepted here"
                raise ConfigProblems([f"{source}: {where}{message}; write the values out"])
    except yaml.YAMLError:
        return


def _load_yaml(text: str, source: str) -> object:
    # Messages are rebuilt from problem and position only: PyYAML's own text quotes the offending
    # line, which may hold a literal password. `from None` keeps that text out of tracebacks too.
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        raise ConfigProblems(
            [f"{source}: {where}invalid YAML: {exc.problem or exc.context}{context}"]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigProblems([f"{source}: invalid YAML: {exc}"]) from None
    except RecursionError:
        raise ConfigProblems([f"{source}: invalid YAML: nested too deeply"]) from None
    except (ValueError, OverflowError) as exc:  # e.g. a date such as 2024-13-45
        raise ConfigProblems([f"{source}: invalid YAML value: {exc}"]) from None


# Typed getters: each reports its own problems and returns the default when absent or invalid.
# None (YAML null) counts as absent everywhere.

_VARIABLE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_VARIABLE_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


def expand_env(value: str, *, where: str, env: Mapping[str, str] | None = None) -> str:
    """`value` with `${VAR}`, `${VAR:-default}` and `$$` expanded; for references kept in a store.

    Raises:
        ConfigError: (a ConfigProblems) naming `where` and the unset variable, never a value.
    """
    report = _Report("", os.environ if env is None else env, "")
    expanded = _substitute(value, _At(report, "", where))
    if expanded is None:
        raise ConfigProblems(report.problems)
    return expanded


def _substitute(text: str, at: _At) -> str | None:
    """`${VAR}`, `${VAR:-default}` and `$$` expanded from the environment; None if one is unset."""
    missing = False

    def expand(match: re.Match[str]) -> str:
        nonlocal missing
        body = match.group("body")
        parsed = _VARIABLE_BODY.fullmatch(body) if body is not None else None
        if match.group(0) != "$$" and parsed is None:  # not shown: may be part of a password
            at.problem("invalid variable reference; write ${NAME} or ${NAME:-default}, $$ for a $")
            missing = True
            return ""
        if parsed is not None and not at.report.environment_references:
            name = parsed.group("name")  # the default is not shown: it may be a password
            at.problem(f"${{{name}}} is not expanded here: a document sent to the daemon never "
                       'reads its environment; give the value itself ($$ for a "$"), or let '
                       "regsyncd read the file at start (serve --config)")
            missing = True
            return ""
        if parsed is None:
            return "$"
        value = at.report.env.get(parsed.group("name"))
        if parsed.group("default") is not None and not value:
            return str(parsed.group("default"))
        if value is None:
            name = parsed.group("name")
            at.problem(f"environment variable {name} is not set (used as ${{{name}}})")
            missing = True
            return ""
        return value

    result = _VARIABLE.sub(expand, text)
    return None if missing else result


def _fields(value: object, at: _At, known: tuple[str, ...]) -> dict[str, object] | None:
    """The mapping at `at`, with unknown keys reported (and the closest known key suggested)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        at.problem(f"expected a mapping, got {_kind(value)}")
        return None
    for key in value:
        if not isinstance(key, str):
            at.problem(f"key {key!r} must be a string, got {_kind(key)}")
        elif key not in known:
            close = difflib.get_close_matches(key[:64], known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            at.key(_shortened(key)).problem(f"unknown key; {hint}")
    return {key: item for key, item in value.items() if isinstance(key, str)}


def _text(fields: dict[str, object], name: str, at: _At, *, required: bool = False) -> str | None:
    value, here = fields.get(name), at.key(name)
    if value is None:
        if required:
            here.problem("is required")
        return None
    if not isinstance(value, str):
        here.problem(f"expected a string, got {_kind(value)}")
        return None
    if not _fits(value, name, here):
        return None
    return _substitute(value, here)


def _fits(value: str, name: str, at: _At) -> bool:
    """Whether `value` is within the field's limit; reports it (by length only) otherwise."""
    limit = _FIELD_MAX.get(name, TEXT_MAX)
    if len(value) <= limit:
        return True
    at.problem(f"is {len(value)} characters long; the limit is {limit}")
    return False


def _shortened(text: str, keep: int = 64) -> str:
    """`text` cut to `keep` characters for a message, saying how long it was."""
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text)} characters)"


def _texts(fields: dict[str, object], name: str, at: _At) -> tuple[str, ...]:
    value, here = fields.get(name), at.key(name)
    if value is None:
        return ()
    if not isinstance(value, list):
        here.problem(f"expected a list of strings, got {_kind(value)}")
        return ()
    if len(value) > LIST_MAX:
        here.problem(f"has {len(value)} entries; the limit is {LIST_MAX}")
        return ()
    result: list[str] = []
    for position, item in enumerate(value):
        if not isinstance(item, str):
            here.index(position).problem(f"expected a string, got {_kind(item)}")
        elif not _fits(item, name, here.index(position)):
            continue
        elif (text := _substitute(item, here.index(position))) is not None:
            result.append(text)
    return tuple(result)


def _bool(fields: dict[str, object], name: str, at: _At, default: bool) -> bool:
    value = fields.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        at.key(name).problem(f"expected true or false, got {_kind(value)}")
        return default
    return value


def _count(fields: dict[str, object], name: str, at: _At, default: int) -> int:
    """An integer >= 1 (every count in the config is one); `default` when absent or invalid."""
    value = fields.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        at.key(name).problem(f"expected an integer, got {_kind(value)}")
    elif value < 1:
        at.key(name).problem(f"must be at least 1, got {value}")
    else:
        return value
    return default


def _positive(fields: dict[str, object], name: str, at: _At) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        at.key(name).problem(f"expected a number, got {_kind(value)}")
    elif not 0 < value < float("inf"):
        at.key(name).problem(f"must be a number greater than 0, got {value}")
    else:
        return float(value)
    return None


def _duration(fields: dict[str, object], name: str, at: _At, default: float) -> float:
    """A duration > 0: every one in the config is a wait or a limit."""
    value = fields.get(name)
    if value is None:
        return default
    try:
        seconds = duration_seconds(value)
    except (ValueError, TypeError) as exc:
        at.key(name).problem(str(exc))
        return default
    if seconds == 0:
        at.key(name).problem("must be greater than 0")
        return default
    return seconds


def _one_of(choice: str, known: list[str], what: str) -> str:
    """ "; known X: a, b" with a did-you-mean when one is close: typos are the usual cause."""
    close = difflib.get_close_matches(choice, known, n=1)
    listed = ", ".join(known) or "none"
    return (f"; did you mean {close[0]!r}?" if close else "") + f" (known {what}: {listed})"


# Sections ------------------------------------------------------------------------------------

_TOP_KEYS = ("version", "global", "registries", "sync_rules", "notifications")
_GLOBAL_KEYS = ("concurrency", "retry", "timeout", "limits")
_RETRY_KEYS = ("max_attempts", "initial_interval", "max_interval")
_LIMIT_KEYS = ("max_tags", "max_listing_bytes", "min_throughput", "throughput_window")
_DEFAULTS = GlobalSettings()


def _config(document: dict[Any, object], report: _Report) -> Config:
    root = _At(report, "")
    fields = _fields(document, root, _TOP_KEYS) or {}
    version = _version(fields.get("version"), root.key("version"))
    global_ = _global(fields.get("global"), _At(report, "global"))
    registries = _registries(fields.get("registries"), root.key("registries"))
    usable = list(registries) + [n for n in report.known_registries if n not in registries]
    rules = _rules(fields.get("sync_rules"), root.key("sync_rules"), usable)
    from .notifyconfig import parse_notifications  # it builds on this module's helpers

    notifications = parse_notifications(fields.get("notifications"), report)
    return Config(version, global_, types.MappingProxyType(registries), rules, notifications)


def _version(value: object, at: _At) -> str:
    # An unquoted `version: 1.0` is a YAML float; accepting it saves users a baffling error.
    if value is None or value == SUPPORTED_VERSION or (type(value) is float and value == 1.0):
        return SUPPORTED_VERSION
    shown = repr(value) if isinstance(value, (str, int, float)) else _kind(value)
    at.problem(f'unsupported version {shown}; this regsync reads version "{SUPPORTED_VERSION}"')
    return SUPPORTED_VERSION


def _global(value: object, at: _At) -> GlobalSettings:
    fields = _fields(value, at, _GLOBAL_KEYS)
    if fields is None:
        return GlobalSettings()
    retry_at = at.key("retry")
    retry = _fields(fields.get("retry"), retry_at, _RETRY_KEYS) or {}
    before = at.count()
    initial = _duration(retry, "initial_interval", retry_at, _DEFAULTS.retry.initial_interval)
    maximum = _duration(retry, "max_interval", retry_at, _DEFAULTS.retry.max_interval)
    if at.count() == before and initial > maximum:
        retry_at.key("initial_interval").problem(
            f"must not exceed retry.max_interval ({initial:g}s > {maximum:g}s)"
        )
    attempts = _count(retry, "max_attempts", retry_at, _DEFAULTS.retry.max_attempts)
    return GlobalSettings(
        concurrency=_count(fields, "concurrency", at, _DEFAULTS.concurrency),
        retry=RetrySettings(attempts, initial, maximum),
        timeout=_duration(fields, "timeout", at, _DEFAULTS.timeout),
        limits=_limits(fields.get("limits"), at.key("limits")),
    )


def _limits(value: object, at: _At) -> Limits:
    fields = _fields(value, at, _LIMIT_KEYS) or {}
    d = _DEFAULTS.limits
    return Limits(
        max_tags=_count(fields, "max_tags", at, d.max_tags),
        max_listing_bytes=_count(fields, "max_listing_bytes", at, d.max_listing_bytes),
        min_throughput=_count(fields, "min_throughput", at, d.min_throughput),
        throughput_window=_duration(fields, "throughput_window", at, d.throughput_window),
    )


def _registries(value: object, at: _At) -> dict[str, RegistrySettings]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        at.problem(f"expected a mapping of registry names to settings, got {_kind(value)}")
        return {}
    result: dict[str, RegistrySettings] = {}
    for name, settings in value.items():
        if not isinstance(name, str) or not name:
            at.problem(f"registry name {name!r} must be a non-empty string")
            continue
        if len(name) > REGISTRY_NAME_MAX:  # not even in a label: it would fill every line
            at.problem(
                f"registry name {_shortened(name)!r} is {len(name)} characters long; "
                f"the limit is {REGISTRY_NAME_MAX}"
            )
            continue
        registry_at = _At(at.report, f'registries "{name}"')
        if not _REGISTRY_NAME.fullmatch(name):
            registry_at.key("name").problem(
                f"{name!r} is not a valid registry name; use 1-{REGISTRY_NAME_MAX} characters "
                'from A-Z, a-z, 0-9, "-", "_" and "."'
            )
        result[name] = _registry(name, settings, registry_at)
    return result


# Registries ----------------------------------------------------------------------------------

_REGISTRY_KEYS = ("url", "username", "password", "insecure", "ca_file", "ratelimit")
_REGISTRY_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HOSTNAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")


def _registry(name: str, value: object, at: _At) -> RegistrySettings:
    fields = _fields(value, at, _REGISTRY_KEYS)
    if fields is None:
        return RegistrySettings(name, "https://invalid")
    before = at.count()
    # Empty counts as absent, so `${USER:-}` means "anonymous unless the variable is set".
    username = _text(fields, "username", at) or None
    password = _text(fields, "password", at) or None
    if at.count() == before and (username is None) != (password is None):
        missing, present = (
            ("password", "username") if password is None else ("username", "password")
        )
        at.key(missing).problem(f"is required when {present} is set (or remove {present})")
    ratelimit = _fields(fields.get("ratelimit"), at.key("ratelimit"), ("qps",)) or {}
    return RegistrySettings(
        name=name,
        url=_url(fields, at) or "https://invalid",
        username=username,
        password=password,
        insecure=_bool(fields, "insecure", at, False),
        ca_file=_ca_file(fields, at),
        qps=_positive(ratelimit, "qps", at.key("ratelimit")),
    )


def _url(fields: dict[str, object], at: _At) -> str | None:
    """scheme://host[:port], lowercased; anything else a user may paste is refused with a hint."""
    text = _text(fields, "url", at, required=True)
    if text is None:
        return None
    here = at.key("url")
    if "@" in text:  # checked first: nothing of a URL holding credentials may be echoed
        here.problem("must not contain credentials; use username and password")
        return None
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        here.problem(f"invalid URL: {exc}")
        return None
    host = parts.hostname or ""
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}" if host else ""
    if parts.scheme not in ("http", "https"):
        here.problem(f"must start with https:// or http://, got {shown or repr(text)}")
    elif not _valid_host(host):
        here.problem(f"has no valid host name: {shown or repr(text)}")
    elif parts.query or parts.fragment:
        here.problem(f"must not have a query or fragment: {shown}")
    elif parts.path not in ("", "/"):
        hint = " (regsync adds /v2/ itself)" if parts.path.startswith("/v2") else ""
        here.problem(f"must not have a path, got {parts.path!r}{hint}")
    else:
        if host in ("docker.io", "index.docker.io"):
            host = "registry-1.docker.io"  # Docker Hub's API answers only there
        host = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    return None


def _valid_host(host: str) -> bool:
    if ":" not in host:
        return _HOSTNAME.fullmatch(host) is not None
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _ca_file(fields: dict[str, object], at: _At) -> str | None:
    """Absolute path of a readable PEM file; relative paths are relative to the config file.

    One answer for every way it can fail (missing, a directory, unreadable, not PEM) that quotes
    only what was written: an API client must not learn which paths exist on the daemon's
    machine (nor the daemon's working directory a relative path resolves against).
    """
    text = _text(fields, "ca_file", at)
    if not text:
        return None
    path = os.path.normpath(os.path.join(at.report.base_dir, os.path.expanduser(text)))
    if not ca_file_usable(path):
        at.key("ca_file").problem(f"{_shortened(text)!r} {CA_FILE_UNREADABLE}")
    return path


CA_FILE_MAX = 16 * 1024 * 1024  # far beyond any CA bundle (the system one is ~200 KiB)
CA_FILE_UNREADABLE = (
    "cannot be read (it must be a PEM file of CA certificates on the daemon's machine)"
)


def ca_file_usable(path: str) -> bool:
    """Whether `path` is a regular file of at most CA_FILE_MAX bytes holding PEM certificates.
    Opened non-blocking and checked on the open file, so a FIFO or a device never hangs it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read(CA_FILE_MAX + 1)
    except OSError:
        return False
    finally:
        os.close(fd)
    if len(data) > CA_FILE_MAX:
        return False
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii"))
    except (ssl.SSLError, ValueError):  # UnicodeDecodeError is a ValueError
        return False
    return True


# Sync rules ----------------------------------------------------------------------------------

_RULE_KEYS = (
    "name",
    "source",
    "target",
    "tags",
    "architectures",
    "platforms",
    "enabled",
    "cron_expression",
    "referrers",
)
_ENDPOINT_KEYS = ("registry", "repository", "exclude")
_TAG_KEYS = ("include", "exclude", "semver", "latest")
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_ARCHITECTURE = re.compile(r"[A-Za-z0-9_.-]+")
_PLATFORM = re.compile(r"[a-z0-9_.-]+/[a-z0-9_.-]+(?:/[a-z0-9_.-]+)?")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _rules(value: object, at: _At, registries: list[str]) -> tuple[SyncRule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        at.problem(f"expected a list of rules, got {_kind(value)}")
        return ()
    if len(value) > RULES_MAX:
        at.problem(f"has {len(value)} rules; the limit is {RULES_MAX}")
        return ()
    rules: list[SyncRule] = []
    first_seen: dict[str, int] = {}
    for position, raw in enumerate(value):
        name = raw.get("name") if isinstance(raw, dict) else None
        shown = isinstance(name, str) and len(name) <= RULE_NAME_MAX
        label = f"sync_rules[{position}]" + (f' "{name}"' if shown else "")
        rule_at = _At(at.report, label)
        rule = _rule(raw, rule_at, registries)
        if rule is None:
            continue
        if rule.name in first_seen:
            rule_at.key("name").problem(
                f"duplicate rule name (also sync_rules[{first_seen[rule.name]}])"
            )
        first_seen.setdefault(rule.name, position)
        rules.append(rule)
    return tuple(rules)


def _rule(value: object, at: _At, registries: list[str]) -> SyncRule | None:
    fields = _fields(value, at, _RULE_KEYS)
    if fields is None:
        return None
    name = _text(fields, "name", at, required=True)
    if name is not None:
        _check_rule_name(name, at.key("name"))
    source = _endpoint(fields.get("source"), at.key("source"), registries)
    target = _endpoint(fields.get("target"), at.key("target"), registries)
    if source is not None and source == target:
        at.key("target").problem("is the same registry and repository as source")
    if target is not None and target.exclude:
        at.key("target").key("exclude").problem("belongs under source (the repositories left out)")
    elif source is not None and target is not None:
        why = check_mapping(source.repository, target.repository)
        if why is not None:
            at.key("target").key("repository").problem(f"{target.repository!r} {why}")
    return SyncRule(
        name=name or "",
        source=source or Endpoint("", ""),
        target=target or Endpoint("", ""),
        tags=_tag_filter(fields.get("tags"), at.key("tags")),
        architectures=_architectures(fields, at),
        platforms=_platforms(fields, at),
        enabled=_bool(fields, "enabled", at, True),
        cron_expression=_cron(fields, at),
        referrers=_bool(fields, "referrers", at, True) if not isinstance(
            fields.get("referrers"), dict) else True,
        referrer_types=_referrer_types(fields.get("referrers"), at.key("referrers")),
    )


def _check_rule_name(name: str, at: _At) -> None:
    """Printable and no surrounding spaces: a name is typed on command lines and shown in logs,
    where a control character or line break would forge lines.

    "/" is allowed: rules are often named after repositories ("library/nginx"), and existing
    configs do so (the panel must quote it in its URLs).
    """
    if not name.strip():
        at.problem("must not be empty")
    elif not name.isprintable():
        at.problem(f"{name!r} must not contain control characters or line breaks")
    elif name != name.strip():
        at.problem(f"{name!r} must not start or end with a space")


def _endpoint(value: object, at: _At, registries: list[str]) -> Endpoint | None:
    if value is None:
        at.problem("is required (a mapping with registry and repository)")
        return None
    fields = _fields(value, at, _ENDPOINT_KEYS)
    if fields is None:
        return None
    before = at.count()
    registry = _text(fields, "registry", at, required=True)
    if registry is not None and registry not in registries:
        at.key("registry").problem(
            f"unknown registry {registry!r}" + _one_of(registry, registries, "registries")
        )
    repository = _text(fields, "repository", at, required=True)
    if repository is not None:
        _check_repository(repository, at.key("repository"))
    exclude = _texts(fields, "exclude", at)
    for position, pattern in enumerate(exclude):
        _check_repository(pattern, at.key("exclude").index(position))
    if exclude and (repository is None or not has_wildcards(repository)):
        at.key("exclude").problem("applies only to a source.repository with wildcards (* or **)")
    if at.count() != before or registry is None or repository is None:
        return None
    return Endpoint(registry, repository, exclude)


def _check_repository(name: str, at: _At) -> None:
    """A repository name, or a glob over them (`*` within a segment, `**` for segments)."""
    if has_wildcards(name):
        try:
            check_glob(name)
        except GlobError as exc:
            at.problem(f"invalid repository glob {name!r}: {exc}")
        return
    if _REPOSITORY.fullmatch(name) and len(name) <= 255:
        return
    if ":" in name or "@" in name:
        hint = "; a tag or digest does not belong here (select tags under tags:)"
    elif name != name.lower() and _REPOSITORY.fullmatch(name.lower()):
        hint = "; it must be lowercase"
    elif len(name) > 255:
        hint = "; it is longer than 255 characters"
    else:
        hint = "; expected lowercase path components such as library/nginx"
    at.problem(f"invalid repository name {name!r}{hint}")


def _tag_filter(value: object, at: _At) -> TagFilter:
    fields = _fields(value, at, _TAG_KEYS)
    if fields is None:
        return TagFilter()
    return TagFilter(
        include=_regexes(fields, "include", at),
        exclude=_regexes(fields, "exclude", at),
        semver=_semver(fields, at),
        latest=_count(fields, "latest", at, 0) or None,
    )


def _regexes(fields: dict[str, object], name: str, at: _At) -> tuple[str, ...]:
    patterns = _texts(fields, name, at)
    for position, pattern in enumerate(patterns):
        try:
            compile_tag_regex(pattern)
        except TagRegexError as exc:
            at.key(name).index(position).problem(f"invalid regular expression {pattern!r}: {exc}")
    return patterns


def _semver(fields: dict[str, object], at: _At) -> str | None:
    """Parsed here with the engine's own parser, so a range that loads is a range that runs."""
    text = _text(fields, "semver", at)
    if text is None:
        return None
    try:
        VersionRange.parse(text)
    except ValueError as exc:
        at.key("semver").problem(str(exc))
    return text.strip()


def _architectures(fields: dict[str, object], at: _At) -> tuple[str, ...]:
    values = _texts(fields, "architectures", at)
    for position, value in enumerate(values):
        if not _ARCHITECTURE.fullmatch(value):
            hint = " (write os/arch/variant under platforms)" if "/" in value else ""
            at.key("architectures").index(position).problem(
                f"invalid architecture {value!r}; expected a name such as amd64{hint}"
            )
    return values


def _platforms(fields: dict[str, object], at: _At) -> tuple[str, ...]:
    values = _texts(fields, "platforms", at)
    for position, value in enumerate(values):
        if not _PLATFORM.fullmatch(value):
            at.key("platforms").index(position).problem(
                f"invalid platform {value!r}; expected os/arch[/variant] in lowercase, "
                "e.g. linux/amd64 or linux/arm/v7"
            )
    return values


def _referrer_types(value: object, at: _At) -> tuple[str, ...]:
    """`referrers: {artifact_types: [...]}`: media types (RFC 6838), at least one."""
    if not isinstance(value, dict):
        return ()
    fields = _fields(value, at, ("artifact_types",))
    if fields is None:
        return ()
    types = _texts(fields, "artifact_types", at)
    if not types and "artifact_types" in fields and fields["artifact_types"] is not None:
        at.key("artifact_types").problem("lists no artifact type (write referrers: false to "
                                         "copy none)")
    for position, kind in enumerate(types):
        if not _MEDIA_TYPE.fullmatch(kind):
            at.key("artifact_types").index(position).problem(
                f"invalid artifact type {kind!r}; expected a media type such as "
                "application/spdx+json")
    return types


def _cron(fields: dict[str, object], at: _At) -> str | None:
    """Five fields (minute hour day month weekday) or an @alias; empty means no schedule."""
    text = _text(fields, "cron_expression", at)
    if text is None or not text.strip():
        return None
    expression, here = " ".join(text.split()), at.key("cron_expression")
    if expression.startswith("@"):
        if expression.lower() not in _CRON_ALIASES:
            here.problem(f"unknown schedule {text!r}; known: {', '.join(_CRON_ALIASES)}")
        return expression.lower()
    count = len(expression.split())
    if count != 5:
        here.problem(
            f"{text!r} has {count} fields; expected 5 "
            '(minute hour day-of-month month day-of-week), e.g. "0 2 * * *"'
        )
    elif not _cron_valid(expression):
        here.problem(f"invalid cron expression {text!r}")
    return expression


def _cron_valid(expression: str) -> bool:
    # imported here: croniter costs ~50 ms, and only rules with a schedule need it
    from croniter import croniter

    return bool(croniter.is_valid(expression))

