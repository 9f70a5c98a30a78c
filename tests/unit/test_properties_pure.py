"""Properties of the pure copy logic, checked on generated inputs (hypothesis)."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import random
import re
from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from regsync.daemon.base.errors import RegsyncError, RemoteServerError, UnsupportedError
from regsync.daemon.engine.filters import select_tags
from regsync.daemon.oci.digest import DigestVerifier
from regsync.daemon.oci.manifest import (
    IndexManifest,
    parse_manifest,
    select_platforms,
)
from regsync.daemon.oci.types import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    OCI_INDEX,
    OCI_MANIFEST,
    RawManifest,
)
from regsync.daemon.values.platform import parse_platform
from regsync.daemon.values.versions import Version, VersionRange, parse_version, version_key

# Tags: small numbers and a few identifiers so ties and equal releases happen often.
_IDENT = st.sampled_from(["alpha", "beta", "rc", "alpine", "1", "2", "11", "0", "x-y"])
_VERSION_TAGS = st.builds(
    lambda v, nums, pre, build: (
        v
        + ".".join(map(str, nums))
        + ("-" + ".".join(pre) if pre else "")
        + ("+" + build if build else "")
    ),
    st.sampled_from(["", "v"]),
    st.lists(st.integers(0, 12), min_size=1, max_size=4),
    st.lists(_IDENT, max_size=3),
    st.sampled_from(["", "b1", "b2"]),
)
_OTHER_TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,12}", fullmatch=True)
TAGS = st.one_of(_VERSION_TAGS, _OTHER_TAGS)


def _semver_cmp(a: Version, b: Version) -> int:
    """Semver precedence written out from the spec, independent of the sort keys under test."""
    ra, rb = (a.release + (0,) * 4)[:4], (b.release + (0,) * 4)[:4]
    if ra != rb:
        return -1 if ra < rb else 1
    if not a.prerelease or not b.prerelease:
        return (not a.prerelease) - (not b.prerelease)
    for x, y in zip(a.prerelease, b.prerelease, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(a.prerelease) > len(b.prerelease)) - (len(a.prerelease) < len(b.prerelease))


@given(st.lists(TAGS, max_size=30), st.randoms())
def test_version_key_sorting_is_deterministic_and_consistent(
    tags: list[str], rnd: random.Random
) -> None:
    ordered = sorted(tags, key=version_key)
    shuffled = list(tags)
    rnd.shuffle(shuffled)
    assert sorted(shuffled, key=version_key) == ordered  # input order does not matter
    for a, b in itertools.pairwise(ordered):
        va, vb = parse_version(a), parse_version(b)
        if va is None or vb is None:
            assert va is None or vb is not None  # non-versions never follow versions
            if va is None and vb is None:
                assert a <= b
        else:
            assert _semver_cmp(va, vb) <= 0
            if _semver_cmp(va, vb) == 0:
                assert a <= b  # ties broken by the tag text


@given(TAGS, TAGS, TAGS)
def test_version_key_is_a_total_order(a: str, b: str, c: str) -> None:
    ka, kb, kc = version_key(a), version_key(b), version_key(c)
    assert (ka == kb) == (a == b)  # antisymmetric: distinct tags never tie
    assert (ka < kb) + (ka == kb) + (ka > kb) == 1
    if ka <= kb <= kc:
        assert ka <= kc


@given(
    st.lists(TAGS, max_size=25),
    st.lists(st.sampled_from([r"^1", "alpine", r"\.", "^v", "rc"]), max_size=2),
    st.lists(st.sampled_from(["-", "beta", "^latest$", "2"]), max_size=2),
    st.one_of(st.none(), st.sampled_from([">=1", "^2", "<3 || >=10", "~1.2", ">=2.0-rc <3"])),
    st.one_of(st.none(), st.integers(0, 8)),
)
def test_select_tags_partitions_and_respects_every_filter(
    tags: list[str],
    include: list[str],
    exclude: list[str],
    semver: str | None,
    latest: int | None,
) -> None:
    selection = select_tags(tags, include=include, exclude=exclude, semver=semver, latest=latest)
    assert Counter(selection.kept) + Counter(t for t, _ in selection.dropped) == Counter(tags)
    assert len(set(selection.kept)) == len(selection.kept)
    assert list(selection.kept) == sorted(selection.kept, key=version_key)
    if latest is not None:
        assert len(selection.kept) <= latest
    compiled = [re.compile(p) for p in (*include, *exclude)]
    for tag in selection.kept:
        assert not include or any(p.search(tag) for p in compiled[: len(include)])
        assert not any(p.search(tag) for p in compiled[len(include) :])
        if semver is not None:
            version = parse_version(tag)
            assert version is not None and VersionRange.parse(semver).contains(version)
    if latest is not None:
        newest_dropped = [t for t, r in selection.dropped if r.startswith("not in the newest")]
        for tag in newest_dropped:  # everything dropped for "latest" is older than what is kept
            assert all(version_key(tag) < version_key(k) for k in selection.kept)


@given(
    st.lists(st.integers(0, 9), min_size=4, max_size=4),
    st.lists(st.integers(0, 9), min_size=4, max_size=4),
    st.lists(st.integers(0, 9), min_size=1, max_size=4),
)
def test_full_bounds_match_precedence(lo: list[int], hi: list[int], v: list[int]) -> None:
    version_range = VersionRange.parse(f">={'.'.join(map(str, lo))} <{'.'.join(map(str, hi))}")
    padded = tuple(v) + (0,) * (4 - len(v))
    assert version_range.contains(Version(tuple(v))) == (tuple(lo) <= padded < tuple(hi))


_DIGEST = st.integers(0, 2**256 - 1).map(lambda n: f"sha256:{n:064x}")
_JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.text(max_size=8),
    _DIGEST,
    st.sampled_from([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, DOCKER_SCHEMA1]),
)
_KEYS = st.sampled_from(
    ["mediaType", "schemaVersion", "config", "layers", "manifests", "digest", "size",
     "platform", "os", "architecture", "variant", "annotations", "subject", "fsLayers"]
)  # fmt: skip
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=6)),
    max_leaves=25,
)
_SERVED = st.sampled_from(["", "application/json", OCI_MANIFEST, OCI_INDEX, DOCKER_SCHEMA1])


@given(st.one_of(st.binary(max_size=300), _JSON.map(lambda j: json.dumps(j).encode())), _SERVED)
def test_parse_manifest_raises_only_regsync_errors(body: bytes, served: str) -> None:
    try:
        parse_manifest(RawManifest(body, served, "sha256:" + "0" * 64))
    except RegsyncError as exc:
        assert isinstance(exc, RemoteServerError | UnsupportedError), exc


@given(st.binary(max_size=5000), st.lists(st.integers(0, 5000), max_size=8), st.booleans())
def test_digest_verifier_equals_hashlib_on_any_chunking(
    data: bytes, cuts: list[int], sha512: bool
) -> None:
    algorithm = "sha512" if sha512 else "sha256"
    verifier = DigestVerifier(algorithm)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        verifier.update(data[start:end])
    expected = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    assert verifier.digest == expected
    assert verifier.size == len(data)
    verifier.verify(expected, len(data))


_PLATFORMS = st.sampled_from(
    ["linux/amd64", "linux/arm64", "linux/arm64/v8", "linux/arm/v7", "linux/arm/v6",
     "windows/amd64", "linux/s390x", None]
)  # fmt: skip


@functools.cache
def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


@st.composite
def _indexes(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    images = draw(st.lists(_PLATFORMS, max_size=6))
    entries: list[dict[str, Any]] = []
    for n, platform in enumerate(images):
        entry: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": _digest(n), "size": n}
        if platform:
            os_, arch, *variant = platform.split("/")
            entry["platform"] = {"os": os_, "architecture": arch}
            if variant:
                entry["platform"]["variant"] = variant[0]
        entries.append(entry)
        if draw(st.booleans()):
            entries.append(
                {"mediaType": OCI_MANIFEST, "digest": _digest(100 + n), "size": 1,
                 "platform": {"os": "unknown", "architecture": "unknown"},
                 "annotations": {"vnd.docker.reference.type": draw(st.sampled_from(
                                     ["attestation-manifest", "builder", "x"])),
                                 "vnd.docker.reference.digest": _digest(n)}}
            )  # fmt: skip
    obj = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": draw(st.permutations(entries))}
    return json.dumps(obj, indent=draw(st.sampled_from([None, 3]))).encode(), obj


@given(
    _indexes(),
    st.lists(st.sampled_from(["amd64", "arm64", "arm", "ppc64le"]), max_size=2),
    st.lists(_PLATFORMS.filter(bool), max_size=2),
)
def test_select_platforms_partitions_and_rewrites_faithfully(
    index_and_obj: tuple[bytes, dict[str, Any]], architectures: list[str], platforms: list[str]
) -> None:
    raw, obj = index_and_obj
    index = parse_manifest(RawManifest(raw, OCI_INDEX, "sha256:" + "0" * 64))
    assert isinstance(index, IndexManifest)
    wanted = [parse_platform(p) for p in platforms if p]
    choice = select_platforms(index, raw, architectures=architectures, platforms=wanted)
    kept, dropped = {d.digest for d in choice.kept}, {d.digest for d in choice.dropped}
    assert kept | dropped == {d.digest for d in index.manifests} and not kept & dropped
    assert (choice.raw is None) == (choice.dropped == ())
    if choice.raw is not None:
        rewritten = json.loads(choice.raw)
        assert [e["digest"] for e in rewritten["manifests"]] == [d.digest for d in choice.kept]
        assert {k: v for k, v in rewritten.items() if k != "manifests"} == {
            k: v for k, v in obj.items() if k != "manifests"
        }
    for d in choice.kept:  # an attestation is kept only with the image it describes
        ref = d.annotations.get("vnd.docker.reference.digest")
        assert ref is None or ref in kept
    for d in choice.dropped:  # and dropped only with it, whatever its reference type
        ref = d.annotations.get("vnd.docker.reference.digest")
        assert ref is None or ref not in kept
