"""WWW-Authenticate parsing: real registries' headers, RFC 7235 corner cases, and junk."""

from __future__ import annotations

import pytest
from regsync.daemon.registry.challenge import Challenge, merge_scopes, parse_challenges


def test_docker_hub() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/nginx:pull",
            },
        )
    ]


def test_ghcr() -> None:
    header = 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/i:pull"'
    [challenge] = parse_challenges(header)
    assert challenge.params["realm"] == "https://ghcr.io/token"
    assert challenge.scopes == ("repository:o/i:pull",)


def test_distribution_basic() -> None:
    assert parse_challenges('Basic realm="Registry Realm"') == [
        Challenge("basic", {"realm": "Registry Realm"})
    ]


def test_distribution_insufficient_scope_with_comma_inside_quotes() -> None:
    header = (
        'Bearer realm="http://127.0.0.1:5001/token",service="test",'
        'scope="repository:a/b:pull,push",error="insufficient_scope"'
    )
    [challenge] = parse_challenges(header)
    assert challenge.params["scope"] == "repository:a/b:pull,push"
    assert challenge.params["error"] == "insufficient_scope"


def test_several_challenges_and_token68() -> None:
    header = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    assert parse_challenges(header) == [
        Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        Challenge("basic", {"realm": "simple"}),
    ]
    assert parse_challenges("Negotiate abc+/==, Bearer") == [
        Challenge("negotiate", token68="abc+/=="),
        Challenge("bearer"),
    ]


def test_scheme_and_keys_are_lower_cased_and_spaces_around_equals_allowed() -> None:
    [challenge] = parse_challenges('BEARER Realm = "https://r/t" , Service=svc')
    assert challenge.scheme == "bearer"
    assert dict(challenge.params) == {"realm": "https://r/t", "service": "svc"}


def test_unquoted_values_with_colons_and_slashes() -> None:
    [challenge] = parse_challenges("Bearer realm=https://r:8443/token,scope=repository:x/y:pull")
    assert challenge.params["realm"] == "https://r:8443/token"
    assert challenge.scopes == ("repository:x/y:pull",)


def test_space_separated_scopes() -> None:
    [challenge] = parse_challenges('Bearer realm="r",scope="repository:a:pull repository:b:pull"')
    assert challenge.scopes == ("repository:a:pull", "repository:b:pull")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", []),
        ("   ,, ,", []),
        ('"quoted junk", Basic realm="x"', [Challenge("basic", {"realm": "x"})]),
        ('Bearer realm="unterminated', [Challenge("bearer", {"realm": "unterminated"})]),
        ("Bearer realm=", [Challenge("bearer", token68="realm=")]),  # RFC: a token68
        ('@@@ Basic realm="x"', []),
        ('Bearer realm="a",=,Basic', [Challenge("bearer", {"realm": "a"}), Challenge("basic")]),
    ],
)
def test_junk_never_raises(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


def test_params_are_read_only() -> None:
    [challenge] = parse_challenges('Basic realm="x"')
    with pytest.raises(TypeError):
        challenge.params["realm"] = "y"  # type: ignore[index]


def test_merge_scopes_unites_actions_per_resource() -> None:
    merged = merge_scopes(
        ["repository:b:push", "repository:a:pull", "repository:b:pull", "registry:catalog:*"]
    )
    assert merged == ("registry:catalog:*", "repository:a:pull", "repository:b:pull,push")
    assert merge_scopes(["repository:b:pull,push"]) == merge_scopes(
        ["repository:b:push", "repository:b:pull"]
    )
    assert merge_scopes([]) == ()
