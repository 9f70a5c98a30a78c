"""Manifest parsing for each media type, digests, and platform selection in an index."""

from __future__ import annotations

import hashlib
import json

import pytest
from regsync.daemon.base.errors import DigestMismatchError, RemoteServerError, UnsupportedError
from regsync.daemon.oci.digest import DigestVerifier, parse_digest, sha256_digest
from regsync.daemon.oci.manifest import (
    ImageManifest,
    IndexManifest,
    describe_platforms,
    image_platform,
    parse_manifest,
    select_platforms,
    wants_platform,
)
from regsync.daemon.oci.types import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    RawManifest,
)
from regsync.daemon.values.platform import Platform, parse_platform


def _d(n: int) -> str:
    return f"sha256:{n:064x}"


CONFIG = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7, "digest": _d(1)}
LAYER = {
    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "size": 9,
    "digest": _d(2),
}

DOCKER_V2 = f"""{{
   "schemaVersion": 2,
   "mediaType": "{DOCKER_MANIFEST}",
   "config": {json.dumps(CONFIG)},
   "layers": [{json.dumps(LAYER)}]
}}""".encode()

OCI_IMAGE = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 3,
                   "digest": _d(3)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 4,
             "digest": _d(4), "annotations": {"org.example": "x"}},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "size": 5,
             "digest": _d(5)},
        ],
        "subject": {"mediaType": OCI_MANIFEST, "size": 6, "digest": _d(6)},
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
).encode()  # fmt: skip

ARTIFACT = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                   "digest": _d(7)},
        "layers": [],
    }
).encode()  # fmt: skip


def _entry(n: int, platform: str | None, **annotations: str) -> dict[str, object]:
    entry: dict[str, object] = {"mediaType": OCI_MANIFEST, "size": 100 + n, "digest": _d(n)}
    if platform:
        os_, arch, *variant = platform.split("/")
        entry["platform"] = {
            "os": os_,
            "architecture": arch,
            **({"variant": variant[0]} if variant else {}),
        }
    if annotations:
        entry["annotations"] = {k.replace("_", "."): v for k, v in annotations.items()}
    return entry


def _attestation(n: int, of: int) -> dict[str, object]:
    return _entry(
        n,
        "unknown/unknown",
        vnd_docker_reference_type="attestation-manifest",
        vnd_docker_reference_digest=_d(of),
    )


BUILDX_ENTRIES = [
    _entry(10, "linux/amd64"),
    _entry(11, "linux/arm64/v8"),
    _entry(12, "linux/arm/v7"),
    _attestation(20, of=10),
    _attestation(21, of=11),
    _attestation(22, of=12),
]
BUILDX_INDEX = {
    "schemaVersion": 2,
    "mediaType": OCI_INDEX,
    "manifests": BUILDX_ENTRIES,
    "annotations": {"org.opencontainers.image.ref.name": "1.25"},
}
BUILDX_RAW = json.dumps(BUILDX_INDEX, indent=3).encode()


def _raw(body: bytes, media_type: str = "") -> RawManifest:
    return RawManifest(body, media_type, sha256_digest(body))


# Parsing ----------------------------------------------------------------------------------


def test_docker_v2_image() -> None:
    manifest = parse_manifest(_raw(DOCKER_V2, DOCKER_MANIFEST))
    assert isinstance(manifest, ImageManifest)
    assert manifest.media_type == DOCKER_MANIFEST
    assert [b.digest for b in manifest.blobs] == [_d(1), _d(2)]
    assert manifest.config.media_type == CONFIG["mediaType"]
    assert manifest.layers[0].size == 9
    assert manifest.subject is None


def test_oci_image_keeps_annotations_and_subject() -> None:
    manifest = parse_manifest(_raw(OCI_IMAGE, OCI_MANIFEST))
    assert isinstance(manifest, ImageManifest)
    assert manifest.media_type == OCI_MANIFEST
    assert [b.digest for b in manifest.blobs] == [_d(3), _d(4), _d(5)]
    assert manifest.layers[0].annotations == {"org.example": "x"}
    assert manifest.subject is not None and manifest.subject.digest == _d(6)


def test_artifact_with_custom_config_and_no_layers() -> None:
    manifest = parse_manifest(_raw(ARTIFACT, OCI_MANIFEST))
    assert isinstance(manifest, ImageManifest)
    assert manifest.config.media_type == "application/vnd.oci.empty.v1+json"
    assert manifest.blobs == (manifest.config,)


def test_docker_list() -> None:
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                {"mediaType": DOCKER_MANIFEST, "size": 5, "digest": _d(8),
                 "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
                {"mediaType": DOCKER_MANIFEST, "size": 6, "digest": _d(9),
                 "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0"}},
            ],
        }
    ).encode()  # fmt: skip
    index = parse_manifest(_raw(body, DOCKER_LIST))
    assert isinstance(index, IndexManifest)
    assert index.media_type == DOCKER_LIST
    assert [d.platform for d in index.manifests] == [
        Platform("linux", "arm", "v6"),
        Platform("windows", "amd64"),
    ]


def test_oci_index_with_attestations() -> None:
    index = parse_manifest(_raw(BUILDX_RAW, OCI_INDEX))
    assert isinstance(index, IndexManifest)
    assert len(index.manifests) == 6
    assert index.manifests[3].annotations["vnd.docker.reference.digest"] == _d(10)
    assert index.manifests[3].platform == Platform("unknown", "unknown")


@pytest.mark.parametrize(
    ("served", "body", "expected"),
    [
        ("", DOCKER_V2, DOCKER_MANIFEST),  # from the JSON mediaType
        ("application/json", DOCKER_V2, DOCKER_MANIFEST),  # generic header ignored
        ("", json.dumps({"schemaVersion": 2, "manifests": []}).encode(), OCI_INDEX),  # guessed
        ("", json.dumps({"config": CONFIG, "layers": []}).encode(), OCI_MANIFEST),  # guessed
        (OCI_MANIFEST, json.dumps({"config": CONFIG, "layers": []}).encode(), OCI_MANIFEST),
    ],
)
def test_media_type_resolution(served: str, body: bytes, expected: str) -> None:
    assert parse_manifest(_raw(body, served)).media_type == expected


def test_served_media_type_wins_over_json() -> None:
    body = json.dumps({"mediaType": DOCKER_MANIFEST, "config": CONFIG, "layers": []}).encode()
    assert parse_manifest(_raw(body, OCI_MANIFEST)).media_type == OCI_MANIFEST


SCHEMA1_BODY = json.dumps(
    {"schemaVersion": 1, "name": "x", "tag": "1", "fsLayers": [{"blobSum": _d(1)}]}
).encode()


@pytest.mark.parametrize(
    ("served", "body"),
    [
        (DOCKER_SCHEMA1, SCHEMA1_BODY),
        (DOCKER_SCHEMA1_SIGNED, SCHEMA1_BODY),
        (DOCKER_SCHEMA1_SIGNED, b"not even json"),
        ("", SCHEMA1_BODY),
        ("application/json", json.dumps({"fsLayers": []}).encode()),
    ],
)
def test_schema1_refused(served: str, body: bytes) -> None:
    with pytest.raises(UnsupportedError) as info:
        parse_manifest(_raw(body, served), registry="hub")
    assert "Docker schema 1 manifests are not supported; re-push the image" in str(info.value)
    assert info.value.registry == "hub"


def test_unknown_declared_media_type_unsupported() -> None:
    body = json.dumps({"mediaType": "application/vnd.oci.artifact.manifest.v1+json"}).encode()
    with pytest.raises(UnsupportedError, match="unsupported manifest media type"):
        parse_manifest(_raw(body))


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'["a", "b"]', "expected a JSON object, got list"),
        (b"42", "expected a JSON object, got int"),
        (json.dumps({"mediaType": OCI_MANIFEST, "config": CONFIG}).encode(), "missing field 'layers'"),
        (json.dumps({"mediaType": OCI_MANIFEST, "layers": []}).encode(), "missing field 'config'"),
        (json.dumps({"mediaType": OCI_INDEX}).encode(), "missing field 'manifests'"),
        (json.dumps({"mediaType": OCI_INDEX, "manifests": {}}).encode(), "'manifests' is not a list"),
        (json.dumps({"mediaType": OCI_INDEX, "manifests": [1]}).encode(), "manifests[0] is not an object"),
        (json.dumps({"schemaVersion": 2}).encode(), "neither 'manifests' nor 'layers'"),
        (json.dumps({"mediaType": 5}).encode(), "'mediaType' is not a string"),
        (json.dumps({"config": {**CONFIG, "digest": "sha256:zz"}, "layers": []}).encode(),
         "config: invalid digest"),
        (json.dumps({"config": {**CONFIG, "size": -1}, "layers": []}).encode(), "config: missing or invalid 'size'"),
        (json.dumps({"config": {**CONFIG, "size": True}, "layers": []}).encode(), "invalid 'size'"),
        (json.dumps({"config": {**CONFIG, "mediaType": ""}, "layers": []}).encode(), "invalid 'mediaType'"),
        (json.dumps({"config": CONFIG, "layers": [{**LAYER, "annotations": {"a": 1}}]}).encode(),
         "layers[0]: 'annotations' is not a map of strings"),
        (json.dumps({"manifests": [{**LAYER, "platform": {"os": "linux"}}]}).encode(),
         "manifests[0]: 'platform' needs string 'os' and 'architecture'"),
        (json.dumps({"config": CONFIG, "layers": [], "subject": "x"}).encode(), "subject is not an object"),
    ],
)  # fmt: skip
def test_invalid_bodies_are_remote_errors_with_excerpt(body: bytes, what: str) -> None:
    with pytest.raises(RemoteServerError) as info:
        parse_manifest(_raw(body, "application/json"), registry="harbor")
    message = str(info.value)
    assert what in message
    assert info.value.registry == "harbor"
    excerpt = message.split("body starts with: ", 1)[1]
    assert excerpt == body[:200].decode("utf-8", "replace").replace("\x00", " ")


def test_excerpt_is_capped_at_200_characters() -> None:
    body = b"<html>" + b"x" * 5000
    with pytest.raises(RemoteServerError) as info:
        parse_manifest(_raw(body))
    excerpt = str(info.value).split("body starts with: ", 1)[1]
    assert len(excerpt) == 200
    assert excerpt.startswith("<html>xxx")


# Digests ----------------------------------------------------------------------------------


def test_sha256_digest() -> None:
    assert sha256_digest(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize(
    ("digest", "expected"),
    [(_d(1), ("sha256", f"{1:064x}")), ("sha512:" + "ab" * 64, ("sha512", "ab" * 64))],
)
def test_parse_digest(digest: str, expected: tuple[str, str]) -> None:
    assert parse_digest(digest) == expected


@pytest.mark.parametrize(
    "digest",
    ["", "sha256", "sha256:", "md5:" + "a" * 32, "sha256:" + "a" * 63, "sha256:" + "a" * 65,
     "sha256:" + "A" * 64, "sha256:" + "g" * 64, "sha512:" + "a" * 64, ":" + "a" * 64,
     "sha256:" + "a" * 63 + "\n"],
)  # fmt: skip
def test_parse_digest_rejects(digest: str) -> None:
    with pytest.raises(ValueError, match="invalid digest"):
        parse_digest(digest)


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_verifier_accepts_matching_content(algorithm: str) -> None:
    data = b"hello world" * 1000
    expected = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    verifier = DigestVerifier.for_digest(expected)
    for i in range(0, len(data), 777):
        verifier.update(memoryview(data)[i : i + 777])
    assert verifier.digest == expected
    assert verifier.size == len(data)
    verifier.verify(expected, len(data))


def test_verifier_rejects_wrong_content_and_size() -> None:
    verifier = DigestVerifier()
    verifier.update(b"abc")
    with pytest.raises(DigestMismatchError, match=f"hashes to {sha256_digest(b'abc')}") as info:
        verifier.verify(_d(1), registry="hub")
    assert info.value.registry == "hub"
    with pytest.raises(DigestMismatchError, match="has 3 bytes, expected 4"):
        verifier.verify(sha256_digest(b"abc"), 4)


def test_verifier_refuses_other_algorithm_and_unknown_ones() -> None:
    with pytest.raises(ValueError, match="sha512"):
        DigestVerifier("sha256").verify("sha512:" + "a" * 128)
    with pytest.raises(ValueError, match="unsupported digest algorithm"):
        DigestVerifier("md5")
    with pytest.raises(ValueError, match="invalid digest"):
        DigestVerifier.for_digest("sha1:abc")


# Platforms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/arm64", Platform("linux", "arm64")),
        ("linux/arm/v7", Platform("linux", "arm", "v7")),
        ("windows/amd64", Platform("windows", "amd64")),
    ],
)
def test_parse_platform(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected
    assert str(parse_platform(text)) == text


@pytest.mark.parametrize(
    "text", ["", "linux", "linux/", "/amd64", "linux/arm/v7/x", "linux/ amd64"]
)
def test_parse_platform_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="os/architecture"):
        parse_platform(text)


@pytest.mark.parametrize(
    ("have", "architectures", "platforms", "expected"),
    [
        ("linux/amd64", ["amd64"], [], True),
        ("windows/amd64", ["amd64"], [], True),  # architectures ignore the os
        ("linux/arm64/v8", ["arm64"], [], True),
        ("linux/arm/v7", ["arm64"], [], False),
        ("linux/arm64", ["aarch64"], [], True),  # alias
        ("linux/amd64", [], ["linux/amd64"], True),
        ("windows/amd64", [], ["linux/amd64"], False),
        ("linux/arm64/v8", [], ["linux/arm64"], True),
        ("linux/arm64", [], ["linux/arm64/v8"], True),  # v8 is arm64's default
        ("linux/arm64/8", [], ["linux/arm64/v8"], True),
        ("linux/arm64/v9", [], ["linux/arm64/v8"], False),
        ("linux/arm64/v9", [], ["linux/arm64"], True),  # no variant wanted: any variant
        ("linux/amd64/v1", [], ["linux/amd64"], True),
        ("linux/amd64", [], ["linux/amd64/v1"], True),
        ("linux/amd64/v3", [], ["linux/amd64/v1"], False),
        ("linux/arm/v6", [], ["linux/arm/v7"], False),
        ("linux/arm", [], ["linux/arm/v7"], True),  # bare arm is v7
        ("linux/s390x", ["amd64"], ["linux/arm64"], False),
        ("linux/s390x", ["amd64"], ["linux/s390x"], True),  # OR of both filters
    ],
)
def test_wants_platform(
    have: str, architectures: list[str], platforms: list[str], expected: bool
) -> None:
    wanted = [parse_platform(p) for p in platforms]
    p = parse_platform(have)
    assert wants_platform(p, architectures=architectures, platforms=wanted) is expected


def _index(raw: bytes) -> IndexManifest:
    index = parse_manifest(_raw(raw))
    assert isinstance(index, IndexManifest)
    return index


def _digests(descriptors: tuple[Descriptor, ...]) -> list[str]:
    return [d.digest for d in descriptors]


def test_no_filter_keeps_everything_byte_for_byte() -> None:
    choice = select_platforms(_index(BUILDX_RAW), BUILDX_RAW)
    assert choice.raw is None
    assert choice.dropped == ()
    assert _digests(choice.kept) == [_d(n) for n in (10, 11, 12, 20, 21, 22)]


def test_filter_matching_everything_keeps_digest() -> None:
    choice = select_platforms(
        _index(BUILDX_RAW), BUILDX_RAW, architectures=["amd64", "arm64", "arm"]
    )
    assert choice.raw is None
    assert len(choice.kept) == 6


def test_dropped_image_takes_its_attestation() -> None:
    index = _index(BUILDX_RAW)
    choice = select_platforms(index, BUILDX_RAW, architectures=["amd64", "arm64"])
    assert _digests(choice.kept) == [_d(10), _d(11), _d(20), _d(21)]  # original order
    assert _digests(choice.dropped) == [_d(12), _d(22)]
    assert choice.raw is not None
    rewritten = json.loads(choice.raw)
    expected = {**BUILDX_INDEX, "manifests": [BUILDX_ENTRIES[i] for i in (0, 1, 3, 4)]}
    assert rewritten == expected  # every other field kept, entries untouched
    assert list(rewritten) == list(BUILDX_INDEX)  # key order kept
    reparsed = _index(choice.raw)
    assert reparsed.manifests == choice.kept
    assert choice.raw == json.dumps(expected, separators=(",", ":")).encode()


def test_platform_filter_with_variant() -> None:
    choice = select_platforms(
        _index(BUILDX_RAW), BUILDX_RAW, platforms=[parse_platform("linux/arm/v7")]
    )
    assert _digests(choice.kept) == [_d(12), _d(22)]


def test_nothing_wanted_gives_empty_kept_and_description() -> None:
    index = _index(BUILDX_RAW)
    choice = select_platforms(index, BUILDX_RAW, platforms=[parse_platform("linux/s390x")])
    assert choice.kept == ()
    assert choice.dropped == index.manifests
    assert choice.raw is not None
    assert describe_platforms(index) == "linux/amd64, linux/arm64/v8, linux/arm/v7"


def test_unlabelled_entries_kept_but_not_alone() -> None:
    body = json.dumps(
        {"manifests": [_entry(10, "linux/amd64"), _entry(11, "linux/arm64"), _entry(30, None)]}
    ).encode()
    index = _index(body)
    choice = select_platforms(index, body, architectures=["arm64"])
    assert _digests(choice.kept) == [_d(11), _d(30)]
    none = select_platforms(index, body, architectures=["ppc64le"])
    assert none.kept == ()


def test_index_of_only_unlabelled_entries_is_kept_whole() -> None:
    body = json.dumps({"manifests": [_entry(30, None), _entry(31, None)]}).encode()
    choice = select_platforms(_index(body), body, architectures=["amd64"])
    assert choice.raw is None and len(choice.kept) == 2
    assert describe_platforms(_index(body)) == "no platforms"


def test_attestation_of_unlabelled_entry_and_without_reference() -> None:
    orphan = _entry(41, "unknown/unknown", vnd_docker_reference_type="attestation-manifest")
    body = json.dumps(
        {"manifests": [_entry(10, "linux/amd64"), _entry(30, None), _attestation(40, of=30),
                       orphan, _entry(11, "linux/arm64"), _attestation(42, of=11)]}
    ).encode()  # fmt: skip
    choice = select_platforms(_index(body), body, architectures=["amd64"])
    assert _digests(choice.kept) == [_d(10), _d(30), _d(40), _d(41)]


def test_rewrite_keeps_unicode_annotations() -> None:
    body = json.dumps(
        {"annotations": {"org.example.title": "café ☕"},
         "manifests": [_entry(10, "linux/amd64"), _entry(11, "linux/arm64")]},
        ensure_ascii=False,
    ).encode()  # fmt: skip
    choice = select_platforms(_index(body), body, architectures=["amd64"])
    assert choice.raw is not None
    assert "café ☕".encode() in choice.raw
    assert json.loads(choice.raw)["annotations"] == {"org.example.title": "café ☕"}


def test_raw_not_matching_index_is_a_programming_error() -> None:
    other = json.dumps({"manifests": [_entry(10, "linux/amd64")]}).encode()
    with pytest.raises(ValueError, match="do not match"):
        select_platforms(_index(BUILDX_RAW), other, architectures=["amd64"])


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (b'{"os": "linux", "architecture": "arm", "variant": "v7", "rootfs": {}}',
         Platform("linux", "arm", "v7")),
        (b'{"os": "linux", "architecture": "amd64"}', Platform("linux", "amd64")),
        (b'{"os": "linux", "architecture": "amd64", "variant": 3}', Platform("linux", "amd64")),
        (b'{"os": "linux"}', None),
        (b'{"os": "", "architecture": "amd64"}', None),
        (b"{}", None),
        (b"[]", None),
        (b"\x00\xff", None),
        (b"[" * 100000, None),
    ],
)  # fmt: skip
def test_image_platform(config: bytes, expected: Platform | None) -> None:
    assert image_platform(config) == expected


def test_extra_annotations_only_on_a_rewritten_index() -> None:
    extra = {"io.regsync.source.digest": sha256_digest(BUILDX_RAW)}
    index = _index(BUILDX_RAW)
    rewritten = select_platforms(index, BUILDX_RAW, architectures=["arm"], annotations=extra)
    assert rewritten.raw is not None
    assert json.loads(rewritten.raw)["annotations"] == {
        "org.opencontainers.image.ref.name": "1.25",
        **extra,
    }
    whole = select_platforms(index, BUILDX_RAW, architectures=["arm", "amd64", "arm64"],
                             annotations=extra)  # fmt: skip
    assert whole.raw is None
    bare = json.dumps({"manifests": [_entry(10, "linux/amd64"), _entry(11, "linux/arm64")]})
    choice = select_platforms(_index(bare.encode()), bare.encode(), architectures=["amd64"],
                              annotations=extra)  # fmt: skip
    assert choice.raw is not None and json.loads(choice.raw)["annotations"] == extra


# Nested indexes and entries that describe others --------------------------------------------


def _nest(n: int) -> dict[str, object]:
    return {"mediaType": OCI_INDEX, "size": 100 + n, "digest": _d(n)}


def test_builder_type_entry_follows_what_it_describes() -> None:
    builder = _entry(23, "unknown/unknown", vnd_docker_reference_type="builder",
                     vnd_docker_reference_digest=_d(11))  # fmt: skip
    body = json.dumps({"manifests": [*BUILDX_ENTRIES, builder]}).encode()
    kept = select_platforms(_index(body), body, architectures=["arm64"])
    assert _digests(kept.kept) == [_d(11), _d(21), _d(23)]
    dropped = select_platforms(_index(body), body, architectures=["amd64"])
    assert _digests(dropped.kept) == [_d(10), _d(20)]
    assert describe_platforms(_index(body)) == "linux/amd64, linux/arm64/v8, linux/arm/v7"


def test_nested_index_is_decided_by_the_caller() -> None:
    body = json.dumps({"manifests": [_nest(50), _entry(12, "linux/arm/v7"), _nest(51),
                                     _attestation(52, of=50)]}).encode()  # fmt: skip
    index = _index(body)
    same = {_d(50): index.manifests[0], _d(51): index.manifests[2]}
    whole = select_platforms(index, body, architectures=["arm"], nested=same)
    assert whole.raw is None and len(whole.kept) == 4
    new = Descriptor(OCI_INDEX, _d(60), 7)
    choice = select_platforms(index, body, architectures=["amd64"],
                              nested={_d(50): new, _d(51): None})  # fmt: skip
    # the rewritten nested index replaces its entry; what described the old digest goes
    assert _digests(choice.kept) == [_d(60)]
    assert _digests(choice.dropped) == [_d(12), _d(51), _d(52)]  # replaced is not dropped
    assert choice.raw is not None
    assert json.loads(choice.raw)["manifests"] == [{"mediaType": OCI_INDEX, "size": 7,
                                                    "digest": _d(60)}]  # fmt: skip
    empty = select_platforms(index, body, architectures=["amd64"],
                             nested={_d(50): None, _d(51): None})  # fmt: skip
    assert empty.kept == ()
    only_nests = json.dumps({"manifests": [_nest(50), _entry(30, None)]}).encode()
    gone = select_platforms(_index(only_nests), only_nests, architectures=["amd64"],
                            nested={_d(50): None})  # fmt: skip
    assert gone.kept == ()  # an unlabelled extra does not keep an index whose images all went
