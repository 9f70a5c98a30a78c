"""Names and sizes: registry and rule names follow one rule everywhere, and oversize values are
refused by their length alone, quickly, and never echoed back in full.

The same checks reach the API through `api.inbound` (a spec becomes a one-item document), so the
API's field names are asserted here too: they are pure functions, no daemon needed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from regsync.daemon.api import inbound
from regsync.daemon.config import (
    LIST_MAX,
    PATTERN_MAX,
    REGISTRY_NAME_MAX,
    REPOSITORY_MAX,
    RULE_NAME_MAX,
    ConfigProblems,
    parse_config,
)
from regsync.proto.regsync.v1 import regsync_pb2 as pb

SRC = "names.yaml"
MEGA = 1024 * 1024


def document(**rule: Any) -> dict[str, Any]:
    """Two registries and one rule; `rule` overrides the rule's fields."""
    base: dict[str, Any] = {
        "name": "nginx",
        "source": {"registry": "src", "repository": "library/nginx"},
        "target": {"registry": "dst", "repository": "mirror/nginx"},
    }
    base.update(rule)
    return {
        "version": "1.0",
        "registries": {"src": {"url": "https://src.example"}, "dst": {"url": "https://dst.example"}},
        "sync_rules": [base],
    }


def dump(doc: dict[str, Any]) -> str:
    """libyaml's emitter: the pure-Python one takes a second per megabyte."""
    return yaml.dump(doc, Dumper=yaml.CSafeDumper)


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigProblems) as caught:
        parse_config(dump(doc), source=SRC, env={})
    return caught.value.problems


def only_problem(doc: dict[str, Any]) -> str:
    found = problems(doc)
    assert len(found) == 1, found
    return found[0]


# Registry names -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "docker.io", "my_registry-2", "Harbor", "x" * 63])
def test_valid_registry_names_load(name: str) -> None:
    doc = document()
    doc["registries"][name] = {"url": "https://other.example"}
    assert name in parse_config(dump(doc), source=SRC, env={}).registries


@pytest.mark.parametrize("name", ["a/b", "my registry", "größe", "a:b", "tab\there", "a\nb"])
def test_invalid_registry_names_are_named_with_the_rule(name: str) -> None:
    doc = document()
    doc["registries"][name] = {"url": "https://other.example"}
    message = only_problem(doc)
    assert message.startswith(f"{SRC}: registries ")
    assert "name: " in message and "is not a valid registry name" in message
    assert f"1-{REGISTRY_NAME_MAX} characters" in message
    assert "\n" not in message  # a line break in the name cannot split the line


def test_a_registry_name_one_over_the_limit_is_refused_by_length() -> None:
    doc = document()
    doc["registries"]["r" * (REGISTRY_NAME_MAX + 1)] = {"url": "https://other.example"}
    assert only_problem(doc).endswith(f"is 64 characters long; the limit is {REGISTRY_NAME_MAX}")


def test_a_megabyte_registry_name_is_not_echoed_and_hides_nothing_else() -> None:
    doc = document()
    doc["registries"]["n" * MEGA] = {"url": "ftp://also-wrong"}
    message = only_problem(doc)  # its settings are not checked: every line would carry the name
    assert f"{MEGA} characters long; the limit is {REGISTRY_NAME_MAX}" in message
    assert len(message) < 300


# Rule names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["nginx-sync", "Nginx 1.25 (prod)", "größe", "x" * 128, "a:b", "library/nginx"]
)
def test_valid_rule_names_load(name: str) -> None:
    rule = parse_config(dump(document(name=name)), source=SRC, env={}).rules[0]
    assert rule.name == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a\nb", "must not contain control characters or line breaks"),
        ("a\tb", "must not contain control characters or line breaks"),
        ("a\x00b", "must not contain control characters or line breaks"),
        ("a\u2028b", "must not contain control characters or line breaks"),
        (" nginx", "must not start or end with a space"),
        ("nginx ", "must not start or end with a space"),
        ("   ", "must not be empty"),
    ],
)
def test_invalid_rule_names(name: str, expected: str) -> None:
    message = only_problem(document(name=name))
    assert message.startswith(f"{SRC}: sync_rules[0]") and ": name: " in message
    assert message.endswith(expected)
    assert "\n" not in message and "\x00" not in message


def test_rule_name_length_limit() -> None:
    message = only_problem(document(name="n" * (RULE_NAME_MAX + 1)))
    # too long to label the rule with: the position says which one
    assert message == f"{SRC}: sync_rules[0]: name: is 129 characters long; the limit is 128"


# Oversize values ----------------------------------------------------------------------------

BIG = "a" * MEGA


@pytest.mark.parametrize(
    ("change", "field", "limit"),
    [
        ({"source": {"registry": "src", "repository": BIG}}, "source.repository", REPOSITORY_MAX),
        ({"target": {"registry": BIG, "repository": "x"}}, "target.registry", REGISTRY_NAME_MAX),
        ({"tags": {"include": [BIG]}}, "tags.include[0]", PATTERN_MAX),
        ({"tags": {"exclude": ["ok", BIG]}}, "tags.exclude[1]", PATTERN_MAX),
        ({"tags": {"semver": BIG}}, "tags.semver", 256),
        ({"cron_expression": BIG}, "cron_expression", 256),
        ({"architectures": [BIG]}, "architectures[0]", 64),
        ({"platforms": [BIG]}, "platforms[0]", 128),
    ],
)
def test_megabyte_rule_fields_are_refused_quickly_by_length(
    change: dict[str, Any], field: str, limit: int
) -> None:
    doc = document(**change)
    start = time.perf_counter()
    message = only_problem(doc)
    assert time.perf_counter() - start < 2.0
    assert message == (
        f'{SRC}: sync_rules[0] "nginx": {field}: is {MEGA} characters long; the limit is {limit}'
    )


@pytest.mark.parametrize(
    ("field", "limit"), [("url", 2048), ("username", 1024), ("ca_file", 4096)]
)
def test_megabyte_registry_fields_are_refused_by_length(field: str, limit: int) -> None:
    doc = document()
    doc["registries"]["src"][field] = BIG
    if field == "username":
        doc["registries"]["src"]["password"] = "pw"
    message = only_problem(doc)
    assert message == (
        f'{SRC}: registries "src": {field}: is {MEGA} characters long; the limit is {limit}'
    )


def test_an_oversize_password_is_refused_without_a_trace_of_it() -> None:
    doc = document()
    doc["registries"]["src"].update(username="u", password="S3cr3t" * 20_000)
    message = only_problem(doc)
    assert message.endswith("password: is 120000 characters long; the limit is 65536")
    assert "S3cr3t" not in message


def test_a_repository_of_exactly_the_limit_passes_and_one_more_does_not() -> None:
    # components of 63 characters joined by "/": a valid name of exactly 255 characters
    name = "/".join(["r" * 63] * 4)
    assert len(name) == REPOSITORY_MAX
    doc = document(source={"registry": "src", "repository": name})
    assert parse_config(dump(doc), source=SRC, env={}).rules[0].source.repository == name
    doc = document(source={"registry": "src", "repository": name + "r"})
    assert only_problem(doc).endswith("is 256 characters long; the limit is 255")


def test_long_lists_are_refused_by_their_length() -> None:
    message = only_problem(document(tags={"include": ["x"] * (LIST_MAX + 1)}))
    assert message.endswith(f"tags.include: has {LIST_MAX + 1} entries; the limit is {LIST_MAX}")


def test_a_megabyte_unknown_key_is_shortened() -> None:
    doc = document()
    doc["sync_rules"][0]["k" * MEGA] = 1
    message = only_problem(doc)
    assert f"({MEGA} characters)" in message and "unknown key" in message
    assert len(message) < 400


def test_every_problem_line_stays_short_whatever_it_quotes() -> None:
    # many long registry names referenced by a rule: "known registries: ..." lists them all
    doc = document()
    for i in range(200):
        doc["registries"][f"{i:03d}" + "r" * 60] = {"url": "https://r.example"}
    doc["sync_rules"][0]["source"]["registry"] = "nope"
    message = only_problem(doc)
    assert "unknown registry 'nope'" in message
    assert len(message) <= 2000 and message.endswith("characters cut)")


# Through the API's conversion: the fields carry the API's names -------------------------------


def test_api_registry_name_problem_names_the_api_field() -> None:
    with pytest.raises(ConfigProblems) as caught:
        inbound.registry_settings(pb.RegistrySpec(name="a/b", url="https://r.example"))
    assert str(caught.value).startswith("registry.name: 'a/b' is not a valid registry name")


def test_api_task_name_problem_names_the_api_field() -> None:
    spec = pb.TaskSpec(name=" nginx",
                       source=pb.Endpoint(registry="src", repository="a"),
                       target=pb.Endpoint(registry="dst", repository="b"))
    with pytest.raises(ConfigProblems) as caught:
        inbound.sync_rule(spec, ["src", "dst"])
    assert str(caught.value) == "task.name: ' nginx' must not start or end with a space"


def test_api_megabyte_regex_is_refused_quickly_without_echo() -> None:
    spec = pb.TaskSpec(name="t", source=pb.Endpoint(registry="src", repository="a"),
                       target=pb.Endpoint(registry="dst", repository="b"),
                       tags=pb.TagFilter(include=["(" * MEGA]))
    start = time.perf_counter()
    with pytest.raises(ConfigProblems) as caught:
        inbound.sync_rule(spec, ["src", "dst"])
    # no YAML on the way: the validation reads the document as built (milliseconds)
    assert time.perf_counter() - start < 5.0
    assert str(caught.value) == (
        f"task.tags.include[0]: is {MEGA} characters long; the limit is {PATTERN_MAX}"
    )
