"""Property tests for the registry client's parsers: challenges and references."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given
from regsync.daemon.oci.reference import parse_reference
from regsync.daemon.registry.challenge import parse_challenges

TOKEN = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,10}", fullmatch=True)
# quoted-string content: anything printable, quotes and backslashes escaped when formatted
VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# parameter names are case-insensitive and occur once per challenge (RFC 9110 11.2): "D" and "d"
# in one challenge are a duplicate, whose handling (the first wins) is tested below
PARAMS = st.dictionaries(TOKEN, VALUE, min_size=1, max_size=4).filter(
    lambda params: len({k.lower() for k in params}) == len(params))


@given(st.lists(st.tuples(st.sampled_from(["Bearer", "Basic", "Negotiate"]), PARAMS),
                min_size=1, max_size=3))
def test_formatted_challenges_parse_back(challenges: list[tuple[str, dict[str, str]]]) -> None:
    header = ", ".join(
        scheme + " " + ", ".join(f"{k}={quoted(v)}" for k, v in params.items())
        for scheme, params in challenges
    )
    parsed = parse_challenges(header)
    assert [(c.scheme, dict(c.params)) for c in parsed] == [
        (scheme.lower(), {k.lower(): v for k, v in params.items()})
        for scheme, params in challenges
    ]


def test_a_duplicate_parameter_keeps_its_first_value() -> None:
    (challenge,) = parse_challenges('Bearer realm="https://a.example/t", REALM="https://b.example/t"')
    assert dict(challenge.params) == {"realm": "https://a.example/t"}


@given(st.text(max_size=200))
def test_challenge_parsing_never_raises(header: str) -> None:
    for challenge in parse_challenges(header):
        assert challenge.scheme == challenge.scheme.lower()


COMPONENT = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)?", fullmatch=True)
HOST = st.from_regex(r"[a-z][a-z0-9]{0,8}\.(?:com|io|example)(?::[1-9][0-9]{0,3})?",
                     fullmatch=True)
TAG = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
HEX = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)


@given(HOST, st.lists(COMPONENT, min_size=1, max_size=3), st.none() | TAG, st.none() | HEX)
def test_references_round_trip(
    host: str, components: list[str], tag: str | None, hex_digest: str | None
) -> None:
    digest = f"sha256:{hex_digest}" if hex_digest else None
    text = f"{host}/{'/'.join(components)}" + (f":{tag}" if tag else "") + (
        f"@{digest}" if digest else "")
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        host, "/".join(components), tag, digest)
    assert parse_reference(str(ref)) == ref


@given(st.text(max_size=80))
def test_reference_parsing_raises_only_value_error(text: str) -> None:
    try:
        ref = parse_reference(text)
    except ValueError as exc:
        assert "invalid reference" in str(exc)
    else:
        assert ref.repository and ref.registry
