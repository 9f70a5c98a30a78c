"""Repository globs (engine/globs.py) and their config checks: pure and fast."""

from __future__ import annotations

import time

import pytest
from regsync.daemon.api import inbound, outbound
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.config import parse_config
from regsync.daemon.settings import Endpoint
from regsync.daemon.values.globs import (
    SAMPLES,
    GlobError,
    ScopeWalk,
    check_glob,
    expand,
    match,
    scope,
    wildcards,
)
from regsync.proto.regsync.v1 import regsync_pb2 as pb


@pytest.mark.parametrize(
    ("pattern", "name", "captures"),
    [
        ("team-a/**", "team-a/web", ("web",)),
        ("team-a/**", "team-a/web/api", ("web/api",)),
        ("team-a/**", "team-a", None),  # ** is one segment or more
        ("team-a/**", "team-b/web", None),
        ("library/*", "library/nginx", ("nginx",)),
        ("library/*", "library/a/b", None),  # * stays in its segment
        ("*/frontend", "shop/frontend", ("shop",)),
        ("*/frontend", "a/shop/frontend", None),
        ("**/frontend", "a/shop/frontend", ("a/shop",)),
        ("app-*-dev/**", "app-x.y-dev/a/b", ("x.y", "a/b")),
        ("a.b/*", "axb/c", None),  # "." is literal
        ("plain/name", "plain/name", ()),
    ],
)
def test_match_captures_each_wildcard(pattern: str, name: str,
                                      captures: tuple[str, ...] | None) -> None:
    assert match(pattern, name) == captures


def test_expand_puts_the_captures_in_order() -> None:
    assert expand("dr/team-a/**", ("web/api",)) == "dr/team-a/web/api"
    assert expand("mirror/*", ("nginx",)) == "mirror/nginx"
    assert expand("x/*-*/**", ("a", "b", "c/d")) == "x/a-b/c/d"


def test_wildcards_and_bad_globs() -> None:
    assert wildcards("a/**/*-x/*") == ("**", "*", "*")
    for bad in ("a/x**", "a/***", "a/**b"):
        with pytest.raises(GlobError):
            check_glob(bad)
    with pytest.raises(GlobError, match="lowercase"):
        check_glob("Team/*")


def test_scope_maps_filters_excludes_and_skips_hostile_names() -> None:
    names = ["team-a/web", "team-a/api/v2", "team-a/old/x", "team-b/web", "team-a/web",
             "team-a/Bad", "team-a/../etc", "team-a/x\x1b[31m", "team-a/a_b.c-d__e"]
    found = scope(names, "team-a/**", "dr/team-a/**", ["team-a/old/**"])
    assert found.pairs == (
        ("team-a/a_b.c-d__e", "dr/team-a/a_b.c-d__e"),
        ("team-a/api/v2", "dr/team-a/api/v2"),
        ("team-a/web", "dr/team-a/web"),
    )
    assert found.excluded == 1
    assert found.invalid == ("team-a/Bad", "team-a/../etc", "team-a/x\x1b[31m")


def test_a_walk_page_by_page_keeps_counts_and_a_few_samples_only() -> None:
    """Memory that does not grow with the catalog: what it leaves out is counted, with the
    first SAMPLES names as examples; a matching name listed again is skipped, so a scope never
    has a repository twice; a name out of lexical order is not (Quay lists by id)."""
    walk = ScopeWalk("team-a/*", "dr/*", ("team-a/old*",))
    first = walk.feed(["team-a/b", "team-a/a"] + [f"Team-A/{n}" for n in range(50)])
    second = walk.feed(["team-a/a", "team-a/c", "team-a/old1", "team-b/x", "team-a/b", "team-a/0"])
    assert first == [("team-a/b", "dr/b"), ("team-a/a", "dr/a")]
    assert second == [("team-a/c", "dr/c"), ("team-a/0", "dr/0")]
    found = walk.summary()
    assert walk.matched == 4 and found.pairs == ()
    assert (found.invalid_count, found.excluded, found.repeated) == (50, 1, 2)
    assert found.invalid == tuple(f"Team-A/{n}" for n in range(SAMPLES))


def test_matching_is_linear_time() -> None:
    """A backtracking translation takes minutes on this; RE2 answers at once."""
    pattern = "*a*a*a*a*a*a*a*a*a*a*b"
    started = time.monotonic()
    assert match(pattern, "a" * 250) is None
    assert time.monotonic() - started < 1.0


_YAML = """
version: "1.0"
registries:
  a: {url: "http://127.0.0.1:1"}
  b: {url: "http://127.0.0.1:2"}
sync_rules:
  - name: team
    source: {registry: a, repository: %s%s}
    target: {registry: b, repository: %s}
"""


def _load(source: str, target: str, exclude: str = "") -> object:
    extra = f", exclude: {exclude}" if exclude else ""
    return parse_config(_YAML % (f'"{source}"', extra, f'"{target}"'), source="s.yaml")


def test_config_accepts_corresponding_wildcards_and_exclude() -> None:
    config = _load("team-a/**", "dr/team-a/**", '["team-a/old/**", "team-a/tmp"]')
    rule = config.rules[0]  # type: ignore[attr-defined]
    assert rule.source == Endpoint("a", "team-a/**", ("team-a/old/**", "team-a/tmp"))
    assert rule.source.is_glob and not Endpoint("a", "x").is_glob


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ("team-a/**", "dr/*", ('sync_rules[0] "team": target.repository: \'dr/*\' must have the'
         " same wildcards in the same order as source.repository (**)")),
        ("*/x/**", "dr/**/*", "target.repository: 'dr/**/*' must have the same wildcards"),
        ("team-a/**", "dr/team-a", "target.repository: 'dr/team-a' must have the same wildcards"),
        ("team-a/web", "dr/*", ("target.repository: 'dr/*' has wildcards but source.repository"
         " has none")),
        ("team-a/x**", "dr/**", "source.repository: invalid repository glob"),
    ],
)
def test_a_bad_mapping_names_the_rule_and_field(source: str, target: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        _load(source, target)
    assert message in str(error.value)


def test_exclude_only_on_a_glob_source() -> None:
    with pytest.raises(ConfigError, match="source.exclude: applies only to a source.repository"
                       " with wildcards"):
        _load("team-a/web", "dr/web", '["team-a/old"]')
    with pytest.raises(ConfigError, match=r"source.exclude\[0\]: invalid repository name"):
        _load("team-a/**", "dr/**", '["Team"]')


def test_the_api_says_the_same_with_the_task_field() -> None:
    spec = pb.TaskSpec(name="team", source=pb.Endpoint(registry="a", repository="team-a/**"),
                       target=pb.Endpoint(registry="b", repository="dr/*"))
    with pytest.raises(ConfigError, match=r"^task\.target\.repository: 'dr/\*' must have the same"):
        inbound.sync_rule(spec, ["a", "b"])
    spec.target.repository = "dr/team-a/**"
    spec.source.exclude.append("team-a/old/**")
    rule = inbound.sync_rule(spec, ["a", "b"])
    assert rule.source.exclude == ("team-a/old/**",)
    assert outbound.task_spec(rule).source.exclude == ["team-a/old/**"]
