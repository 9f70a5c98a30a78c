"""Image reference parsing with docker's normalisation."""

from __future__ import annotations

import pytest
from regsync.daemon.oci.reference import Reference, parse_reference

DIGEST = "sha256:" + "a" * 64
HUB = "registry-1.docker.io"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", Reference(HUB, "library/nginx", None, None)),
        ("nginx:1.25", Reference(HUB, "library/nginx", "1.25", None)),
        ("docker.io/nginx", Reference(HUB, "library/nginx", None, None)),
        ("index.docker.io/library/nginx", Reference(HUB, "library/nginx", None, None)),
        ("registry-1.docker.io/nginx", Reference(HUB, "library/nginx", None, None)),
        ("bitnami/redis:7", Reference(HUB, "bitnami/redis", "7", None)),
        ("localhost/foo", Reference("localhost", "foo", None, None)),
        ("localhost:5000/a/b/c:v1", Reference("localhost:5000", "a/b/c", "v1", None)),
        ("127.0.0.1:5000/x", Reference("127.0.0.1:5000", "x", None, None)),
        ("[::1]:5000/x:t", Reference("[::1]:5000", "x", "t", None)),
        ("ghcr.io/o/i@" + DIGEST, Reference("ghcr.io", "o/i", None, DIGEST)),
        ("Quay.IO/o/i:t@" + DIGEST, Reference("quay.io", "o/i", "t", DIGEST)),
        ("MyHost/repo", Reference("myhost", "repo", None, None)),
        ("a/b__c/d-e.f_g", Reference(HUB, "a/b__c/d-e.f_g", None, None)),
    ],
)
def test_parse_and_normalise(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


def test_str_name_and_identifier() -> None:
    ref = parse_reference("localhost:5000/a/b:v1@" + DIGEST)
    assert str(ref) == f"localhost:5000/a/b:v1@{DIGEST}"
    assert ref.name == "localhost:5000/a/b"
    assert ref.identifier == DIGEST
    assert parse_reference("nginx:1").identifier == "1"
    assert parse_reference("nginx").identifier == "latest"
    assert str(parse_reference("nginx")) == f"{HUB}/library/nginx"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("Nginx", "must be lower case"),
        ("nginx:", "tag ''"),
        ("nginx:-bad", "tag '-bad'"),
        ("nginx:" + "t" * 129, "1-128"),
        ("nginx@sha256:abc", "is not a digest"),
        ("nginx@sha256:" + "A" * 64, "64 lower-case hex"),
        ("a//b", "component ''"),
        ("a/b-/c", "component 'b-'"),
        ("host:5000/", "repository name is empty"),
        ("bad_host.io:x/y", "is not a registry host"),
        ("a/" + "b" * 260, "over 255"),
    ],
)
def test_invalid_references_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="invalid reference") as info:
        parse_reference(text)
    assert why in str(info.value)


def test_docker_hub_official_images_live_under_library() -> None:
    from regsync.daemon.oci.reference import canonical_repository

    assert canonical_repository("registry-1.docker.io", "nginx") == "library/nginx"
    assert canonical_repository("docker.io", "bitnami/nginx") == "bitnami/nginx"
    assert canonical_repository("harbor.example.com", "nginx") == "nginx"
