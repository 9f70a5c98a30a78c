"""The config loader: the seed format loads exactly; every mistake is named precisely, at once."""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml
from regsync.daemon.base.durations import duration_seconds
from regsync.daemon.base.errors import ConfigError
from regsync.daemon.config import (
    CA_FILE_MAX,
    CA_FILE_UNREADABLE,
    ConfigProblems,
    expand_env,
    load_config,
    parse_applied,
    parse_config,
)
from regsync.daemon.settings import (
    Config,
    Endpoint,
    GlobalSettings,
    RegistrySettings,
    RetrySettings,
    SyncRule,
    TagFilter,
)
from regsync.daemon.values.platform import Platform
from regsync.daemon.values.versions import VersionRange
from support.certs import self_signed

REPO = Path(__file__).resolve().parents[2]
SRC = "sync.yaml"
RULE = 'sync_rules[0] "nginx-sync"'
ENV = {"DOCKERHUB_USER": "dh-user", "DOCKERHUB_PASSWORD": "dh-pass", "HARBOR_PASSWORD": "hb-pass"}

# The seed README's example, verbatim: users have files like this and they must keep working.
SEED_YAML = r"""
version: "1.0"
global:
  concurrency: 5            # how many blobs move at once
  retry:
    max_attempts: 5         # attempts for an operation that fails
    initial_interval: 1s
    max_interval: 30s
  timeout: 10m
registries:
  dockerhub:
    url: https://registry-1.docker.io
    username: ${DOCKERHUB_USER}       # ${VAR} is read from the environment
    password: ${DOCKERHUB_PASSWORD}
  harbor:
    url: https://harbor.example.com
    username: admin
    password: ${HARBOR_PASSWORD}
    ratelimit:
      qps: 50
sync_rules:
  - name: "nginx-sync"
    source:
      registry: dockerhub
      repository: library/nginx
    target:
      registry: harbor
      repository: prod/nginx
    tags:
      include: ["^1\\.2[0-9]\\.*"]    # only 1.2x versions
      exclude: [".*-alpine"]          # no alpine variants
      latest: 10                      # of what remains, the newest 10
    architectures: ["amd64", "arm64"]
    enabled: true
    cron_expression: "0 2 * * *"      # every day at 02:00
"""
SEED: dict[str, Any] = yaml.safe_load(SEED_YAML)


def seed() -> dict[str, Any]:
    return copy.deepcopy(SEED)


def problems(document: dict[str, Any] | str, env: dict[str, str] | None = None) -> list[str]:
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    with pytest.raises(ConfigProblems) as caught:
        parse_config(text, source=SRC, env=ENV if env is None else env)
    assert isinstance(caught.value, ConfigError)
    assert str(caught.value).splitlines()[-len(caught.value.problems) :] == caught.value.problems
    return caught.value.problems


def only_problem(document: dict[str, Any] | str, env: dict[str, str] | None = None) -> str:
    found = problems(document, env)
    assert len(found) == 1, found
    return found[0]


def load(document: dict[str, Any] | str, env: dict[str, str] | None = None) -> Config:
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    return parse_config(text, source=SRC, env=ENV if env is None else env)


# The seed's format and the example file ---------------------------------------------------------


def test_seed_example_loads_exactly() -> None:
    config = load(SEED_YAML)
    assert config.version == "1.0"
    assert config.global_ == GlobalSettings(5, RetrySettings(5, 1.0, 30.0), 600.0)
    hub, harbor = config.registries["dockerhub"], config.registries["harbor"]
    assert hub == RegistrySettings(
        "dockerhub", "https://registry-1.docker.io", "dh-user", "dh-pass"
    )
    assert (harbor.username, harbor.password, harbor.qps) == ("admin", "hb-pass", 50.0)
    assert hub.host == "registry-1.docker.io" and not hub.plain_http
    (rule,) = config.rules
    assert rule.name == "nginx-sync"
    assert rule.source == Endpoint("dockerhub", "library/nginx")
    assert rule.target == Endpoint("harbor", "prod/nginx")
    assert rule.tags == TagFilter(include=(r"^1\.2[0-9]\.*",), exclude=(".*-alpine",), latest=10)
    assert rule.architectures == ("amd64", "arm64") and rule.platforms == ()
    assert rule.enabled and rule.cron_expression == "0 2 * * *"
    assert config.rule("nginx-sync") is rule and config.enabled_rules() == (rule,)


def test_example_file_loads_without_variables_as_anonymous() -> None:
    config = load_config(REPO / "configs" / "sync.example.yaml", env={})
    assert config.registries["dockerhub"].username is None
    assert config.registries["harbor"].password is None
    assert [rule.name for rule in config.enabled_rules()] == ["nginx-sync"]
    extension = config.rule("hyperkube-stable")
    assert extension.tags.semver == ">=1.20 <2"
    assert extension.platforms == ("linux/amd64", "linux/arm/v7")


def test_loaded_rules_hold_parsed_filters_and_platforms() -> None:
    """The settings a file loads into hold parsed values (issue 11): the engine reads the
    platforms and the version range from there instead of parsing the strings again."""
    rule = load_config(REPO / "configs" / "sync.example.yaml", env={}).rule("hyperkube-stable")
    assert rule.parsed_platforms == (Platform("linux", "amd64"), Platform("linux", "arm", "v7"))
    assert rule.tags.version_range == VersionRange.parse(">=1.20 <2")
    with pytest.raises(ValueError, match="invalid platform 'linux'"):
        SyncRule("r", Endpoint("a", "x"), Endpoint("b", "y"), platforms=("linux",))


def test_example_file_shows_a_glob_rule_and_anchored_filters() -> None:
    config = load_config(REPO / "configs" / "sync.example.yaml", env={})
    glob = config.rule("team-a-dr")
    assert (glob.source.repository, glob.target.repository) == ("team-a/**", "dr/team-a/**")
    assert glob.source.exclude == ("team-a/scratch/**", "team-a/*-tmp")
    assert glob.referrers and glob.referrer_types == (
        "application/spdx+json", "application/vnd.dev.cosign.artifact.sig.v1+json")
    assert config.rule("redis").tags == config.rule("postgres").tags
    assert config.rule("redis").tags.latest == 5


def test_example_file_takes_credentials_from_the_environment() -> None:
    env = {**ENV, "HARBOR_USER": "admin", "HARBOR_PASSWORD": "p@ss: #{x}"}
    config = load_config(REPO / "configs" / "sync.example.yaml", env=env)
    assert config.registries["dockerhub"].password == "dh-pass"
    assert config.registries["harbor"].password == "p@ss: #{x}"
    assert "p@ss" not in repr(config) and "dh-pass" not in repr(config)


def test_defaults_when_optional_sections_are_absent() -> None:
    config = load({"registries": {"a": {"url": "http://localhost:5000"}}})
    assert config.version == "1.0"
    assert config.global_ == GlobalSettings()
    assert config.rules == () and config.enabled_rules() == ()
    assert config.registries["a"].plain_http and config.registries["a"].host == "localhost:5000"


def test_unknown_rule_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r'unknown sync rule "nginx"; known rules: "nginx-sync"'):
        load(SEED_YAML).rule("nginx")


def test_every_problem_is_reported_at_once() -> None:
    doc = seed()
    doc["global"]["concurrency"] = 0
    doc["registries"]["harbor"]["ratelimit"]["qps"] = -1
    doc["sync_rules"][0]["tags"]["latest"] = 0
    found = problems(doc)
    assert found == [
        f"{SRC}: global: concurrency: must be at least 1, got 0",
        f'{SRC}: registries "harbor": ratelimit.qps: must be a number greater than 0, got -1',
        f"{SRC}: {RULE}: tags.latest: must be at least 1, got 0",
    ]
    with pytest.raises(ConfigError) as caught:
        load(doc)
    assert str(caught.value).splitlines()[0] == "3 configuration problems:"


# Files and YAML ---------------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"{missing}: cannot read the config file: No such file"):
        load_config(missing)


def test_malformed_yaml_names_line_and_column_without_quoting_the_line() -> None:
    text = "version: '1.0'\nregistries:\n  a:\n    password: s3cret: x\n"
    message = only_problem(text)
    assert message.startswith(f"{SRC}: line 4, column 21: invalid YAML: ")
    assert "mapping values are not allowed" in message
    assert "s3cret" not in message


def test_duplicate_keys_are_refused_with_their_line() -> None:
    text = "registries:\n  a: {url: 'http://a'}\n  a: {url: 'http://b'}\n"
    assert only_problem(text) == f"{SRC}: line 3, column 3: invalid YAML: duplicate key 'a'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "the top level must be a mapping, got list"),
        ("", "the file is empty"),
        ("just text", "the top level must be a mapping, got string"),
    ],
)
def test_top_level_must_be_a_mapping(text: str, expected: str) -> None:
    assert only_problem(text).startswith(f"{SRC}: {expected}")


def test_unknown_top_level_key_suggests_the_closest() -> None:
    doc = seed()
    doc["sync_rule"] = doc.pop("sync_rules")
    assert only_problem(doc) == f"{SRC}: sync_rule: unknown key; did you mean 'sync_rules'?"


@pytest.mark.parametrize("version", ["1.0", 1.0, None])
def test_supported_versions(version: object) -> None:
    doc = seed()
    doc["version"] = version
    assert load(doc).version == "1.0"


def test_unsupported_version_says_what_is_supported() -> None:
    doc = seed()
    doc["version"] = "2.0"
    assert only_problem(doc) == (
        f"{SRC}: version: unsupported version '2.0'; this regsync reads version \"1.0\""
    )


# Environment variables --------------------------------------------------------------------------


def test_missing_variable_names_it_and_where_it_is_used_but_no_value() -> None:
    message = only_problem(SEED_YAML, {"DOCKERHUB_USER": "dh-user", "HARBOR_PASSWORD": "hb-pass"})
    assert message == (
        f'{SRC}: registries "dockerhub": password: environment variable DOCKERHUB_PASSWORD '
        "is not set (used as ${DOCKERHUB_PASSWORD})"
    )


def test_substitution_defaults_escapes_and_regex_dollars() -> None:
    doc = seed()
    doc["registries"]["harbor"]["url"] = "https://${HARBOR_HOST:-harbor.local}"
    doc["registries"]["harbor"]["password"] = "$${HARBOR_PASSWORD}-${HARBOR_PASSWORD}"
    doc["sync_rules"][0]["tags"]["exclude"] = ["-alpine$", "^${SKIP}$"]
    config = load(doc, {**ENV, "SKIP": "edge"})
    assert config.registries["harbor"].url == "https://harbor.local"
    assert config.registries["harbor"].password == "${HARBOR_PASSWORD}-hb-pass"
    assert config.rules[0].tags.exclude == ("-alpine$", "^edge$")


def test_variables_are_substituted_after_yaml_parsing() -> None:
    tricky = "a: b\n- [c] # d {e} 'f\" ${G}"
    config = load(SEED_YAML, {**ENV, "HARBOR_PASSWORD": tricky})
    assert config.registries["harbor"].password == tricky


@pytest.mark.parametrize("password", ["${1BAD}", "s3cr${OPEN", "x${A-b}y"])
def test_invalid_variable_references_do_not_echo_the_text(password: str) -> None:
    doc = seed()
    doc["registries"]["harbor"]["password"] = password
    assert only_problem(doc) == (
        f'{SRC}: registries "harbor": password: invalid variable reference; '
        "write ${NAME} or ${NAME:-default}, $$ for a $"
    )


def test_config_problems_survive_pickling() -> None:
    doc = seed()
    doc["global"]["concurrency"] = 0
    doc["sync_rules"][0]["tags"]["latest"] = 0
    with pytest.raises(ConfigProblems) as caught:
        load(doc)
    copied = pickle.loads(pickle.dumps(caught.value))
    assert copied.problems == caught.value.problems and str(copied) == str(caught.value)


def test_expand_env_for_stored_references() -> None:
    env = {"PW": "hb-pass"}
    assert expand_env("a$$b-${PW}-${NOPE:-dflt}", where="registry 'harbor': password", env=env) == (
        "a$b-hb-pass-dflt"
    )
    with pytest.raises(ConfigProblems) as caught:
        expand_env("${PW}${NOPE}", where="registry 'harbor': password", env=env)
    assert str(caught.value) == (
        "registry 'harbor': password: environment variable NOPE is not set (used as ${NOPE})"
    )


# Global settings --------------------------------------------------------------------------------


def test_global_durations_and_numbers() -> None:
    doc = seed()
    doc["global"] = {"concurrency": 8, "timeout": 90, "retry": {"initial_interval": "250ms"}}
    settings = load(doc).global_
    assert settings == GlobalSettings(8, RetrySettings(5, 0.25, 30.0), 90.0)


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        ({"concurrency": "five"}, None, "concurrency: expected an integer, got string"),
        ({"concurrency": True}, None, "concurrency: expected an integer, got bool"),
        ({"concurrency": 2.5}, None, "concurrency: expected an integer, got float"),
        ({"timeout": "0s"}, None, "timeout: must be greater than 0"),
        ({"timeout": "ten minutes"}, None, "timeout: invalid duration 'ten minutes'"),
        ({"timeout": "-5s"}, None, "timeout: duration '-5s' is negative"),
        ({"retry": {"max_attempts": 0}}, None, "retry.max_attempts: must be at least 1, got 0"),
        (
            {"retry": {"initial_interval": "1m", "max_interval": "30s"}},
            None,
            "retry.initial_interval: must not exceed retry.max_interval (60s > 30s)",
        ),
        ({"retry": {"max_attempt": 3}}, None, "retry.max_attempt: unknown key; did you mean"),
        ({"retry": [1]}, None, "retry: expected a mapping, got list"),
    ],
)
def test_global_problems(section: dict[str, Any], value: None, expected: str) -> None:
    doc = seed()
    doc["global"] = section
    assert only_problem(doc).startswith(f"{SRC}: global: {expected}")


# Registries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://Harbor.Example.com/", "https://harbor.example.com"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("https://[::1]:5443", "https://[::1]:5443"),
        ("  https://r.example  ", "https://r.example"),
    ],
)
def test_urls_are_normalised(url: str, normalised: str) -> None:
    doc = seed()
    doc["registries"]["harbor"]["url"] = url
    assert load(doc).registries["harbor"].url == normalised


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, "url: is required"),
        ("ftp://harbor.example.com", "url: must start with https:// or http://, got ftp://"),
        ("harbor.example.com", "url: must start with https:// or http://, got 'harbor.example."),
        ("https://harbor.example.com/v2/", "url: must not have a path, got '/v2/' (regsync adds"),
        ("https://harbor.example.com/prod", "url: must not have a path, got '/prod'"),
        ("https://harbor.example.com?x=1", "url: must not have a query or fragment"),
        ("https://harbor.example.com:http", "url: invalid URL: Port could not be cast"),
        ("https://", "url: has no valid host name"),
        ("https://bad host", "url: has no valid host name"),
        (5000, "url: expected a string, got int"),
    ],
)
def test_bad_urls(url: object, expected: str) -> None:
    doc = seed()
    doc["registries"]["harbor"]["url"] = url
    assert only_problem(doc).startswith(f'{SRC}: registries "harbor": {expected}')


def test_credentials_in_url_are_refused_without_echoing_them() -> None:
    doc = seed()
    doc["registries"]["harbor"]["url"] = "https://admin:${HARBOR_PASSWORD}@harbor.example.com"
    message = only_problem(doc)
    assert message == (
        f'{SRC}: registries "harbor": url: must not contain credentials; use username and password'
    )
    assert "hb-pass" not in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": None}, "password: is required when username is set (or remove username)"),
        ({"username": None}, "username: is required when password is set (or remove password)"),
        ({"pasword": "x"}, "pasword: unknown key; did you mean 'password'?"),
        ({"insecure": "yes please"}, "insecure: expected true or false, got string"),
        ({"ratelimit": {"qps": 0}}, "ratelimit.qps: must be a number greater than 0, got 0"),
        ({"ratelimit": {"qps": "50"}}, "ratelimit.qps: expected a number, got string"),
        ({"ratelimit": {"burst": 5}}, "ratelimit.burst: unknown key; known keys: qps"),
        ({"ratelimit": 50}, "ratelimit: expected a mapping, got int"),
        ({"ca_file": "missing.pem"}, f"ca_file: 'missing.pem' {CA_FILE_UNREADABLE}"),
        ({"ca_file": "/"}, f"ca_file: '/' {CA_FILE_UNREADABLE}"),
    ],
)
def test_registry_problems(change: dict[str, Any], expected: str) -> None:
    doc = seed()
    doc["registries"]["harbor"].update(change)
    assert only_problem(doc).startswith(f'{SRC}: registries "harbor": {expected}')


def test_ca_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    self_signed(tmp_path / "certs", "ca-")  # certs/ca-cert.pem
    doc = seed()
    doc["registries"]["harbor"].update(ca_file="certs/ca-cert.pem", insecure=False)
    config_file = tmp_path / "sync.yaml"
    config_file.write_text(yaml.safe_dump(doc))
    config = load_config(config_file, env=ENV)
    assert config.registries["harbor"].ca_file == str(tmp_path / "certs" / "ca-cert.pem")


def test_every_unusable_ca_file_gets_one_answer_that_tells_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Missing, a directory, a FIFO, unreadable, not PEM, empty, too big: the same words, quoting
    only what was written (a client must not learn which paths exist on the daemon's machine)."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    (tmp_path / "empty.pem").write_bytes(b"")
    (tmp_path / "binary.pem").write_bytes(bytes(range(256)))
    os.mkfifo(tmp_path / "fifo")
    cert, _ = self_signed(tmp_path)
    big = tmp_path / "big.pem"
    big.write_bytes(cert.read_bytes() * (CA_FILE_MAX // len(cert.read_bytes()) + 1))
    locked = tmp_path / "locked.pem"
    locked.write_bytes(cert.read_bytes())
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any) -> int:
        # root reads every file (tests run as root here): the refusal is the kernel's EACCES
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    monkeypatch.chdir(tmp_path)  # relative names resolve here, and that must not show either
    names = ["missing.pem", "dir", "fifo", "locked.pem", "garbage.pem", "empty.pem",
             "binary.pem", "big.pem", "garbage.pem/x"]
    answers = []
    for name in names:
        doc = seed()
        doc["registries"]["harbor"]["ca_file"] = name
        answers.append(only_problem(doc).replace(f"'{name}'", "'PATH'"))
    assert set(answers) == {f"{SRC}: registries \"harbor\": ca_file: 'PATH' {CA_FILE_UNREADABLE}"}
    doc = seed()
    doc["registries"]["harbor"]["ca_file"] = str(cert)
    assert parse_config(yaml.safe_dump(doc), source=SRC, env=ENV).registries["harbor"].ca_file


def test_registries_must_be_a_mapping_of_names() -> None:
    doc = seed()
    doc["registries"] = [{"url": "https://a"}]
    found = problems(doc)
    assert (
        found[0] == f"{SRC}: registries: expected a mapping of registry names to settings, got list"
    )


def test_password_never_in_repr() -> None:
    settings = load(SEED_YAML).registries["harbor"]
    assert "hb-pass" not in repr(settings) and "hb-pass" not in str(settings)
    assert settings.password == "hb-pass"


# Sync rules -------------------------------------------------------------------------------------


def rule_problem(change: dict[str, Any]) -> str:
    doc = seed()
    doc["sync_rules"][0].update(change)
    return only_problem(doc)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"tags": {"include": ["^1", "^1\\.2["]}},
            (
                "tags.include[1]: invalid regular expression '^1\\\\.2[': "
                "missing ]: ["
            ),
        ),
        ({"tags": {"include": 5}}, "tags.include: expected a list of strings, got int"),
        ({"tags": {"exclude": ["ok", 3]}}, "tags.exclude[1]: expected a string, got int"),
        ({"tags": {"latest": "10"}}, "tags.latest: expected an integer, got string"),
        ({"tags": {"latest": 0}}, "tags.latest: must be at least 1, got 0"),
        ({"tags": {"semver": ">=1.x"}}, "tags.semver: invalid version range '>=1.x': '>=1.x' is"),
        ({"tags": {"semver": " "}}, "tags.semver: invalid version range ' ': empty alternative"),
        ({"tags": {"lates": 3}}, "tags.lates: unknown key; did you mean 'latest'?"),
        ({"architectures": ["amd64", ""]}, "architectures[1]: invalid architecture ''"),
        ({"architectures": ["linux/amd64"]}, "architectures[0]: invalid architecture 'linux/"),
        ({"architectures": "amd64"}, "architectures: expected a list of strings, got string"),
        ({"platforms": ["linux"]}, "platforms[0]: invalid platform 'linux'; expected os/arch"),
        ({"platforms": ["Linux/AMD64"]}, "platforms[0]: invalid platform 'Linux/AMD64'"),
        ({"enabled": "yes"}, "enabled: expected true or false, got string"),
        ({"referrers": "no"}, "referrers: expected true or false, got string"),
        ({"prune": "yes"}, "prune: expected true or false, got string"),
        ({"prune_max": "101%"}, "prune_max: a percentage is at most 100%, got '101%'"),
        ({"prune_max": -1}, "prune_max: expected a number or a percentage such as '25%', got -1"),
        ({"prune_max": "half"}, "prune_max: expected a number or a percentage such as '25%'"),
        ({"prune_max": True}, "prune_max: expected a number or a percentage such as '25%'"),
        ({"referrers": {"artifact_types": ["spdx"]}},
         "referrers.artifact_types[0]: invalid artifact type 'spdx'; expected a media type"),
        ({"referrers": {"artifact_types": []}}, "referrers.artifact_types: lists no artifact"),
        ({"referrers": {"artifact_type": ["a/b"]}},
         "referrers.artifact_type: unknown key; did you mean 'artifact_types'?"),
        ({"cron_expression": "0 2 * *"}, "cron_expression: '0 2 * *' has 4 fields; expected 5"),
        ({"cron_expression": "0 0 2 * * *"}, "cron_expression: '0 0 2 * * *' has 6 fields"),
        ({"cron_expression": "61 2 * * *"}, "cron_expression: invalid cron expression '61 2 * *"),
        ({"cron_expression": "@reboot"}, "cron_expression: unknown schedule '@reboot'; known: @"),
        ({"cron_expresion": "0 2 * * *"}, "cron_expresion: unknown key; did you mean 'cron_exp"),
        ({"source": None}, "source: is required (a mapping with registry and repository)"),
        ({"source": "dockerhub/library/nginx"}, "source: expected a mapping, got string"),
        ({"target": {"registry": "harbor"}}, "target.repository: is required"),
        (
            {"target": {"registry": "dockerhub", "repository": "library/nginx"}},
            "target: is the same registry and repository as source",
        ),
        (
            {"source": {"registry": "dockrhub", "repository": "library/nginx"}},
            (
                "source.registry: unknown registry 'dockrhub'; did you mean 'dockerhub'? "
                "(known registries: dockerhub, harbor)"
            ),
        ),
        (
            {"target": {"registry": "harbor", "repository": "Prod/Nginx"}},
            "target.repository: invalid repository name 'Prod/Nginx'; it must be lowercase",
        ),
        (
            {"target": {"registry": "harbor", "repository": "prod/nginx:1.25"}},
            "target.repository: invalid repository name 'prod/nginx:1.25'; a tag or digest",
        ),
        (
            {"target": {"registry": "harbor", "repository": "prod//nginx"}},
            "target.repository: invalid repository name 'prod//nginx'; expected lowercase",
        ),
    ],
)
def test_rule_problems(change: dict[str, Any], expected: str) -> None:
    assert rule_problem(change).startswith(f"{SRC}: {RULE}: {expected}")


@pytest.mark.parametrize("expression", ["0 2 * * *", "*/15 * * * mon-fri", "@daily", "@hourly"])
def test_cron_expressions_accepted(expression: str) -> None:
    doc = seed()
    doc["sync_rules"][0]["cron_expression"] = expression
    assert load(doc).rules[0].cron_expression == expression


def test_rule_extensions_load() -> None:
    doc = seed()
    doc["sync_rules"][0].update(
        tags={"semver": "^1.20 <1.26.0-rc.1"}, platforms=["linux/arm/v7"], cron_expression=""
    )
    rule = load(doc).rules[0]
    assert rule.tags == TagFilter(semver="^1.20 <1.26.0-rc.1")
    assert rule.platforms == ("linux/arm/v7",) and rule.cron_expression is None


def test_duplicate_rule_names() -> None:
    doc = seed()
    doc["sync_rules"].append(copy.deepcopy(doc["sync_rules"][0]))
    doc["sync_rules"][1]["target"]["repository"] = "prod/nginx2"
    assert only_problem(doc) == (
        f'{SRC}: sync_rules[1] "nginx-sync": name: duplicate rule name (also sync_rules[0])'
    )


def test_a_pruning_rule_owns_its_target_repository() -> None:
    doc = seed()
    other = copy.deepcopy(doc["sync_rules"][0])
    other["name"] = "nginx-alpine"
    doc["sync_rules"].append(other)
    assert len(load(doc).rules) == 2  # two rules writing one target: fine while neither prunes
    doc["sync_rules"][0]["prune"] = True
    assert only_problem(doc) == (
        f'{SRC}: sync_rules[0] "nginx-sync": prune: the target repository is also written by'
        " rule 'nginx-alpine', whose tags every prune would delete; give this rule a target"
        " repository of its own")


def test_rule_without_name_is_labelled_by_position() -> None:
    doc = seed()
    del doc["sync_rules"][0]["name"]
    assert only_problem(doc) == f"{SRC}: sync_rules[0]: name: is required"


def test_rules_must_be_a_list_of_mappings() -> None:
    doc = seed()
    doc["sync_rules"] = {"nginx-sync": {}}
    assert only_problem(doc) == f"{SRC}: sync_rules: expected a list of rules, got mapping"
    doc["sync_rules"] = ["nginx-sync"]
    assert only_problem(doc) == f"{SRC}: sync_rules[0]: expected a mapping, got string"


# Durations --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1.0),
        ("500ms", 0.5),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("2m3.5s", 123.5),
        ("250us", 0.00025),
        ("7", 7.0),
        (" 30s ", 30.0),
        (45, 45.0),
        (0.25, 0.25),
        ("0", 0.0),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    assert duration_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10 minutes", "invalid duration '10 minutes'"),
        ("", "empty duration"),
        ("1d", "invalid duration '1d'"),
        ("1H", "invalid duration '1H'"),
        ("-1s", "duration '-1s' is negative"),
        (-3, "duration -3 is negative"),
        (float("nan"), "duration nan is not a finite number"),
        (True, "expected a duration"),
    ],
)
def test_parse_duration_errors(value: str | float, expected: str) -> None:
    with pytest.raises((ValueError, TypeError)) as caught:
        duration_seconds(value)
    assert str(caught.value).startswith(expected)


@pytest.mark.parametrize("url", ["https://docker.io", "https://index.docker.io/"])
def test_docker_hub_aliases_point_at_its_api_host(url: str) -> None:
    document = seed()
    document["registries"]["dockerhub"]["url"] = url
    assert load(document).registries["dockerhub"].url == "https://registry-1.docker.io"


def test_rules_may_use_registries_known_elsewhere() -> None:
    text = (
        'version: "1.0"\nregistries: {}\nsync_rules:\n'
        "  - name: r\n    source: {registry: stored, repository: a}\n"
        "    target: {registry: stored, repository: b}\n"
    )
    assert parse_config(text, source=SRC, known_registries=["stored"]).rules[0].name == "r"
    with pytest.raises(ConfigProblems, match="unknown registry 'stored'"):
        parse_config(text, source=SRC)


def test_lookaround_is_a_config_error_naming_rule_field_and_engine() -> None:
    problem = rule_problem({"tags": {"exclude": ["-alpine", "^(?!1\\.2)"]}})
    assert problem.startswith(f"{SRC}: {RULE}: tags.exclude[1]: invalid regular expression")
    assert "RE2 syntax: no backreferences or lookaround" in problem


def test_too_many_rules_is_one_problem() -> None:
    doc = seed()
    doc["sync_rules"] = [{"name": f"r{i}"} for i in range(10_001)]
    assert only_problem(doc) == f"{SRC}: sync_rules: has 10001 rules; the limit is 10000"


@pytest.mark.parametrize("text", ["a: &x 1\nb: *x\n", "b: &x {u: 1}\nc: {<<: *x}\n"])
def test_applied_documents_refuse_anchors_and_aliases(text: str) -> None:
    with pytest.raises(ConfigProblems, match="anchors and aliases"):
        parse_applied(text, source="s.yaml")


def test_applied_documents_are_capped_at_a_mebibyte() -> None:
    with pytest.raises(ConfigProblems, match="the limit is 1048576"):
        parse_applied("#" * (1024 * 1024) + "\n", source="s.yaml")


def test_files_the_daemon_reads_itself_may_keep_anchors() -> None:
    text = ("registries:\n  a: &r {url: 'https://a.example'}\n  b: *r\n"
            "sync_rules: []\n")
    config = parse_config(text, source=SRC)
    assert config.registries["b"].url == "https://a.example"


def test_prune_is_opt_in_with_a_limit_of_half_the_target_by_default() -> None:
    from regsync.daemon.engine.prune import DEFAULT_LIMIT, PruneLimit

    plain = parse_config(yaml.safe_dump(_prune_doc({})), source="t.yaml").rules[0]
    assert (plain.prune, plain.prune_max) == (False, DEFAULT_LIMIT) == (False, PruneLimit(50, True))
    for written, limit in ((10, PruneLimit(10)), ("10", PruneLimit(10)),
                           ("25%", PruneLimit(25, True))):
        doc = _prune_doc({"prune": True, "prune_max": written})
        rule = parse_config(yaml.safe_dump(doc), source="t.yaml").rules[0]
        assert (rule.prune, rule.prune_max) == (True, limit)


def _prune_doc(extra: dict[str, object]) -> dict[str, object]:
    return {
        "registries": {"a": {"url": "https://a.example"}, "b": {"url": "https://b.example"}},
        "sync_rules": [{"name": "r", "source": {"registry": "a", "repository": "x"},
                        "target": {"registry": "b", "repository": "y"}, **extra}],
    }


def test_referrers_choose_artifact_types() -> None:
    doc = seed()
    doc["sync_rules"][0]["referrers"] = {"artifact_types": ["application/spdx+json",
                                                           "application/vnd.in-toto+json"]}
    rule = load(doc).rules[0]
    assert rule.referrers and rule.referrer_types == ("application/spdx+json",
                                                      "application/vnd.in-toto+json")
    doc["sync_rules"][0]["referrers"] = {}
    rule = load(doc).rules[0]
    assert rule.referrers and rule.referrer_types == ()
    doc["sync_rules"][0]["referrers"] = False
    assert load(doc).rules[0].referrers is False
