"""The `sync_rules:` section: names, endpoints, repository names and globs, tag filters,
platforms and schedules, each checked with the parser the engine runs (a rule that loads is a
rule that runs)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..base.errors import ConfigError
from ..settings import Endpoint, SyncRule, TagFilter
from ..values.cron import normalized
from ..values.globs import GlobError, check_glob, check_mapping, has_wildcards
from ..values.prunelimit import DEFAULT_LIMIT, PruneLimit, parse_prune_limit
from ..values.tagregex import TagRegexError, compile_tag_regex
from ..values.versions import VersionRange
from .fields import (
    RULE_NAME_MAX,
    RULES_MAX,
    read_bool,
    read_count,
    read_mapping,
    read_text,
    read_texts,
)
from .problems import At, kind, one_of

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
    "prune",
    "prune_max",
)
_ENDPOINT_KEYS = ("registry", "repository", "exclude")
_TAG_KEYS = ("include", "exclude", "semver", "latest")
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_ARCHITECTURE = re.compile(r"[A-Za-z0-9_.-]+")
_PLATFORM = re.compile(r"[a-z0-9_.-]+/[a-z0-9_.-]+(?:/[a-z0-9_.-]+)?")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")


def read_rules(value: object, at: At, registries: list[str]) -> tuple[SyncRule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        at.problem(f"expected a list of rules, got {kind(value)}")
        return ()
    if len(value) > RULES_MAX:
        at.problem(f"has {len(value)} rules; the limit is {RULES_MAX}")
        return ()
    rules: list[SyncRule] = []
    labels: list[At] = []
    first_seen: dict[str, int] = {}
    for position, raw in enumerate(value):
        name = raw.get("name") if isinstance(raw, dict) else None
        shown = isinstance(name, str) and len(name) <= RULE_NAME_MAX
        label = f"sync_rules[{position}]" + (f' "{name}"' if shown else "")
        rule_at = At(at.report, label)
        rule = _rule(raw, rule_at, registries)
        if rule is None:
            continue
        if rule.name in first_seen:
            rule_at.key("name").problem(
                f"duplicate rule name (also sync_rules[{first_seen[rule.name]}])"
            )
        first_seen.setdefault(rule.name, position)
        rules.append(rule)
        labels.append(rule_at)
    _check_pruned_targets(rules, labels)
    return tuple(rules)


def _check_pruned_targets(rules: list[SyncRule], labels: list[At]) -> None:
    writers = by_target(rules)
    for rule, at in zip(rules, labels, strict=True):
        if rule.prune and (why := target_conflict(rule, writers)) is not None:
            at.key("prune").problem(why)


def by_target(rules: Iterable[SyncRule]) -> dict[tuple[str, str], list[SyncRule]]:
    """Rules by the (registry, repository) they write: what `target_conflict` looks in."""
    writers: dict[tuple[str, str], list[SyncRule]] = {}
    for rule in rules:
        writers.setdefault((rule.target.registry, rule.target.repository), []).append(rule)
    return writers


def target_conflict(rule: SyncRule, writers: Mapping[tuple[str, str], list[SyncRule]]
                    ) -> str | None:
    """Why `rule` cannot write its target beside the other rules (`writers`: `by_target`), or
    None: a pruning rule's target repository is its own (another rule writing there would see
    its tags deleted by every run of the pruning one). Plain repositories only: globs are not
    compared."""
    for other in writers.get((rule.target.registry, rule.target.repository), ()):
        if other.name == rule.name:
            continue
        if rule.prune:
            return (f"the target repository is also written by rule {other.name!r}, whose tags"
                    " every prune would delete; give this rule a target repository of its own")
        if other.prune:
            return (f"the target repository is pruned by rule {other.name!r}, which would"
                    " delete this rule's tags; give one of them another target repository")
    return None


def _rule(value: object, at: At, registries: list[str]) -> SyncRule | None:
    fields = read_mapping(value, at, _RULE_KEYS)
    if fields is None:
        return None
    name = read_text(fields, "name", at, required=True)
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
        enabled=read_bool(fields, "enabled", at, True),
        cron_expression=_cron(fields, at),
        referrers=read_bool(fields, "referrers", at, True) if not isinstance(
            fields.get("referrers"), dict) else True,
        referrer_types=_referrer_types(fields.get("referrers"), at.key("referrers")),
        prune=read_bool(fields, "prune", at, False),
        prune_max=_prune_max(fields, at),
    )


def _prune_max(fields: dict[str, object], at: At) -> PruneLimit:
    value = fields.get("prune_max")
    if value is None:
        return DEFAULT_LIMIT
    try:
        return parse_prune_limit(value)
    except ValueError as exc:
        at.key("prune_max").problem(str(exc))
        return DEFAULT_LIMIT


def _check_rule_name(name: str, at: At) -> None:
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


def _endpoint(value: object, at: At, registries: list[str]) -> Endpoint | None:
    if value is None:
        at.problem("is required (a mapping with registry and repository)")
        return None
    fields = read_mapping(value, at, _ENDPOINT_KEYS)
    if fields is None:
        return None
    before = at.count()
    registry = read_text(fields, "registry", at, required=True)
    if registry is not None and registry not in registries:
        at.key("registry").problem(
            f"unknown registry {registry!r}" + one_of(registry, registries, "registries")
        )
    repository = read_text(fields, "repository", at, required=True)
    if repository is not None:
        _check_repository(repository, at.key("repository"))
    exclude = read_texts(fields, "exclude", at)
    for position, pattern in enumerate(exclude):
        _check_repository(pattern, at.key("exclude").index(position))
    if exclude and (repository is None or not has_wildcards(repository)):
        at.key("exclude").problem("applies only to a source.repository with wildcards (* or **)")
    if at.count() != before or registry is None or repository is None:
        return None
    return Endpoint(registry, repository, exclude)


def _check_repository(name: str, at: At) -> None:
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


def _tag_filter(value: object, at: At) -> TagFilter:
    fields = read_mapping(value, at, _TAG_KEYS)
    if fields is None:
        return TagFilter()
    return TagFilter(
        include=_regexes(fields, "include", at),
        exclude=_regexes(fields, "exclude", at),
        semver=_semver(fields, at),
        latest=read_count(fields, "latest", at, 0) or None,
    )


def _regexes(fields: dict[str, object], name: str, at: At) -> tuple[str, ...]:
    """The valid patterns (the `TagFilter` compiles them again from its cache); each invalid one
    is a problem, so a document holding one never becomes settings."""
    valid: list[str] = []
    for position, pattern in enumerate(read_texts(fields, name, at)):
        try:
            compile_tag_regex(pattern)
        except TagRegexError as exc:
            at.key(name).index(position).problem(f"invalid regular expression {pattern!r}: {exc}")
        else:
            valid.append(pattern)
    return tuple(valid)


def _semver(fields: dict[str, object], at: At) -> str | None:
    """Checked with the parser `TagFilter` runs, so a range that loads is a range that runs;
    None (with a problem) when invalid."""
    text = read_text(fields, "semver", at)
    if text is None:
        return None
    try:
        VersionRange.parse(text)
    except ValueError as exc:
        at.key("semver").problem(str(exc))
        return None
    return text.strip()


def _architectures(fields: dict[str, object], at: At) -> tuple[str, ...]:
    values = read_texts(fields, "architectures", at)
    for position, value in enumerate(values):
        if not _ARCHITECTURE.fullmatch(value):
            hint = " (write os/arch/variant under platforms)" if "/" in value else ""
            at.key("architectures").index(position).problem(
                f"invalid architecture {value!r}; expected a name such as amd64{hint}"
            )
    return values


def _platforms(fields: dict[str, object], at: At) -> tuple[str, ...]:
    """The valid platforms (the `SyncRule` parses them); each invalid one is a problem."""
    valid: list[str] = []
    for position, value in enumerate(read_texts(fields, "platforms", at)):
        if _PLATFORM.fullmatch(value):
            valid.append(value)
        else:
            at.key("platforms").index(position).problem(
                f"invalid platform {value!r}; expected os/arch[/variant] in lowercase, "
                "e.g. linux/amd64 or linux/arm/v7"
            )
    return tuple(valid)


def _referrer_types(value: object, at: At) -> tuple[str, ...]:
    """`referrers: {artifact_types: [...]}`: media types (RFC 6838), at least one."""
    if not isinstance(value, dict):
        return ()
    fields = read_mapping(value, at, ("artifact_types",))
    if fields is None:
        return ()
    types = read_texts(fields, "artifact_types", at)
    if not types and "artifact_types" in fields and fields["artifact_types"] is not None:
        at.key("artifact_types").problem("lists no artifact type (write referrers: false to "
                                         "copy none)")
    for position, kind_ in enumerate(types):
        if not _MEDIA_TYPE.fullmatch(kind_):
            at.key("artifact_types").index(position).problem(
                f"invalid artifact type {kind_!r}; expected a media type such as "
                "application/spdx+json")
    return types


def _cron(fields: dict[str, object], at: At) -> str | None:
    """Five fields (minute hour day month weekday) or an @alias; empty means no schedule."""
    text = read_text(fields, "cron_expression", at)
    if text is None:
        return None
    try:
        return normalized(text) or None
    except ConfigError as exc:
        at.key("cron_expression").problem(str(exc))
        return " ".join(text.split())

