"""Proves the test bed itself, so other integration tests can trust it.

Every check here is made against an independent witness: skopeo for digests, the registry's
own access log for request counts, raw httpx for auth answers.
"""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from support.images import (
    DOCKER_LIST,
    OCI_INDEX,
    CorpusSpec,
    build_corpus,
    fetch_blob,
    fetch_manifest,
    manifest_digest,
    push_image,
    push_index,
    push_index_info,
    random_layer,
    sha256,
    skopeo_digest,
    stream_layer,
)
from support.proxy import CountingProxy, Fault, fail_times
from support.registry import AuthMode, RegistryFactory, RegistryServer
from support.tokenservice import Scope

pytestmark = pytest.mark.integration


def test_anonymous_push_is_seen_by_skopeo_with_the_same_digest(registry: RegistryServer) -> None:
    digest = push_image(registry, "lib/app", "v1", layers=[b"base", random_layer(4096, 1)])
    assert manifest_digest(registry, "lib/app", "v1") == digest
    assert skopeo_digest(registry.url, "lib/app", "v1") == digest
    assert manifest_digest(registry, "lib/app", "absent") is None


def test_two_anonymous_registries_are_independent(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    push_image(registry, "lib/app", "v1", layers=[b"x"])
    assert registry.url != registry2.url
    assert manifest_digest(registry2, "lib/app", "v1") is None


def test_basic_auth_refuses_a_wrong_password_and_accepts_the_right_one(
    basic_registry: RegistryServer,
) -> None:
    url = f"{basic_registry.url}/v2/"
    assert basic_registry.username == "alice" and basic_registry.password
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("alice", "wrong")).status_code == 401
    assert httpx.get(url, auth=("alice", basic_registry.password)).status_code == 200
    digest = push_image(basic_registry, "team/app", "1.0", layers=[b"layer"], oci=True)
    assert skopeo_digest(basic_registry.url, "team/app", "1.0", basic_registry.credentials) == (
        digest
    )
    assert basic_registry.password not in repr(basic_registry)


def test_token_service_grants_pull_push_and_the_registry_accepts_the_token(
    token_registry: RegistryServer,
) -> None:
    service = token_registry.token_service
    assert service is not None and token_registry.username == "bob"
    challenge = httpx.get(f"{token_registry.url}/v2/").headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{service.url}"')
    params = {"service": service.service, "scope": "repository:lib/app:pull,push"}
    creds = ("bob", token_registry.password or "")
    answer = httpx.get(service.url, params=params, auth=creds).json()
    assert answer["token"] == answer["access_token"] and answer["expires_in"] > 0
    headers = {"Authorization": f"Bearer {answer['token']}"}
    upload = httpx.post(f"{token_registry.url}/v2/lib/app/blobs/uploads/", headers=headers)
    assert upload.status_code == 202  # push granted
    tags = httpx.get(f"{token_registry.url}/v2/lib/app/tags/list", headers=headers)
    assert tags.status_code == 404  # pull granted; the repository just has no tags yet
    assert httpx.get(service.url, params=params, auth=("bob", "wrong")).status_code == 401
    assert service.count(account="bob", status=200) == 1
    assert service.count(status=401) == 1


def test_token_without_credentials_grants_nothing(token_registry: RegistryServer) -> None:
    service = token_registry.token_service
    assert service is not None
    params = {"service": service.service, "scope": "repository:lib/app:pull"}
    token = httpx.get(service.url, params=params).json()["token"]
    tags = httpx.get(
        f"{token_registry.url}/v2/lib/app/tags/list", headers={"Authorization": f"Bearer {token}"}
    )
    assert tags.status_code == 401


def test_token_mode_push_and_skopeo_agree(token_registry: RegistryServer) -> None:
    digest = push_index(token_registry, "lib/multi", "latest", oci=False)
    creds = token_registry.credentials
    assert skopeo_digest(token_registry.url, "lib/multi", "latest", creds) == digest
    service = token_registry.token_service
    assert service is not None
    # the pusher caches one token per repository scope instead of one per request
    assert service.count(account="bob") <= 3


def test_scope_parse_keeps_colons_in_names() -> None:
    scope = Scope.parse("repository:host:5000/lib/app:pull,push")
    assert scope == Scope("repository", "host:5000/lib/app", ("pull", "push"))


def test_oci_index_has_buildx_style_attestations(registry: RegistryServer) -> None:
    info = push_index_info(registry, "lib/multi", "v1", shared_base=b"shared base")
    raw, media_type = fetch_manifest(registry, "lib/multi", "v1")
    assert media_type == OCI_INDEX and sha256(raw) == info.digest
    assert skopeo_digest(registry.url, "lib/multi", "v1") == info.digest
    manifests = httpx.Response(200, content=raw).json()["manifests"]
    platforms = [m["platform"] for m in manifests]
    assert {"os": "linux", "architecture": "arm64", "variant": "v8"} in platforms
    attestations = [m for m in manifests if m["platform"]["os"] == "unknown"]
    assert len(attestations) == 2
    for entry in attestations:
        refers_to = entry["annotations"]["vnd.docker.reference.digest"]
        assert entry["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
        assert info.attestations[refers_to] == entry["digest"]
        assert manifest_digest(registry, "lib/multi", entry["digest"]) == entry["digest"]


def test_docker_manifest_list_has_no_attestations(registry: RegistryServer) -> None:
    digest = push_index(registry, "lib/multi", "list", oci=False)
    raw, media_type = fetch_manifest(registry, "lib/multi", digest)
    assert media_type == DOCKER_LIST
    assert all(m["platform"]["os"] == "linux" for m in httpx.Response(200, content=raw).json()[
        "manifests"])


def test_corpus_shares_base_layers_and_streams_the_large_one(registry: RegistryServer) -> None:
    spec = CorpusSpec(repos=2, tags_per_repo=2, large_layer_size=3 * 1024 * 1024 + 5)
    corpus = build_corpus(registry, spec)
    assert corpus.tags.keys() == set(spec.repo_names())
    for repo, tags in corpus.tags.items():
        for tag, digest in tags.items():
            assert manifest_digest(registry, repo, tag) == digest
    assert corpus.large_layer is not None and corpus.large_layer.size == spec.large_layer_size
    expected = hashlib.sha256(b"".join(stream_layer(spec.large_layer_size, "0:large")))
    assert corpus.large_layer.digest == "sha256:" + expected.hexdigest()
    assert registry.count("PATCH", r"/blobs/uploads/") >= 1
    assert build_corpus(registry, spec).tags == corpus.tags  # deterministic


def test_multi_arch_corpus_tags_are_indexes_of_distinct_platform_images(
    registry: RegistryServer,
) -> None:
    spec = CorpusSpec(repos=1, tags_per_repo=2, platforms=3)
    corpus = build_corpus(registry, spec)
    [repo] = spec.repo_names()
    for tag, digest in corpus.tags[repo].items():
        body, media_type = fetch_manifest(registry, repo, tag)
        assert media_type == OCI_INDEX and sha256(body) == digest
        entries = json.loads(body)["manifests"]
        platforms = [e["platform"]["architecture"] for e in entries]
        assert platforms == ["amd64", "arm64", "arm", "unknown", "unknown", "unknown"]
        for entry in entries:  # every image and attestation is in the registry
            assert manifest_digest(registry, repo, entry["digest"]) == entry["digest"]
    assert len(set(corpus.tags[repo].values())) == 2
    assert build_corpus(registry, spec).tags == corpus.tags  # deterministic


def test_access_log_counts_by_method_and_path(registry: RegistryServer) -> None:
    push_image(registry, "lib/app", "v1", layers=[b"x"])
    before = registry.count("GET", r"/manifests/")
    manifest_digest(registry, "lib/app", "v1")
    assert registry.count("HEAD", r"^/v2/lib/app/manifests/v1$") == 1
    assert registry.count("GET", r"/manifests/") == before == 0
    assert registry.count("PUT", r"/manifests/", status=201) == 1


def test_proxy_forwards_and_counts_a_head(registry: RegistryServer) -> None:
    digest = push_image(registry, "lib/app", "v1", layers=[b"x"])
    with CountingProxy(registry) as proxy:
        assert manifest_digest(proxy, "lib/app", "v1") == digest
        assert proxy.count("HEAD", r"/manifests/v1$") == 1
        assert proxy.count("GET", r"/manifests/") == 0
        # uploads through the proxy: Locations must lead back through it
        pushed = push_image(proxy, "lib/other", "v2", layers=[random_layer(3_000_000, 7)])
        assert proxy.count("PUT", r"/blobs/uploads/") >= 1
    assert manifest_digest(registry, "lib/other", "v2") == pushed
    assert registry.count("HEAD", r"/manifests/v1$") == 1


def test_proxy_corrupt_body_changes_the_blob_bytes(registry: RegistryServer) -> None:
    layer = random_layer(2048, 3)
    push_image(registry, "lib/app", "v1", layers=[layer])
    fault = fail_times(Fault.corrupt(), 1, "GET", r"/blobs/sha256:")
    with CountingProxy(registry, fault=fault) as proxy:
        corrupted = fetch_blob(proxy, "lib/app", sha256(layer))
        assert len(corrupted) == len(layer) and corrupted != layer
        assert fetch_blob(proxy, "lib/app", sha256(layer)) == layer  # only the first one


def test_proxy_status_fault_answers_without_the_registry(registry: RegistryServer) -> None:
    fault = fail_times(Fault.http_status(503, retry_after=2), 1, "*", r"^/v2/$")
    with CountingProxy(registry, fault=fault) as proxy:
        first = httpx.get(f"{proxy.url}/v2/")
        assert first.status_code == 503 and first.headers["Retry-After"] == "2"
        assert httpx.get(f"{proxy.url}/v2/").status_code == 200
        assert proxy.count("GET", r"^/v2/$") == 2
    assert registry.count("GET", r"^/v2/$") == 1


def test_registry_factory_starts_each_mode(registry_factory: RegistryFactory) -> None:
    for mode in AuthMode:
        server = registry_factory(mode)
        assert server.running
        expected = 200 if mode is AuthMode.ANONYMOUS else 401
        assert httpx.get(f"{server.url}/v2/").status_code == expected
        assert server.data_dir.is_dir()


def test_proxy_streams_a_chunked_upload_and_can_drop_connections(
    registry: RegistryServer,
) -> None:
    data = random_layer(2_500_000, 9)
    drop = fail_times(Fault(disconnect=True), 1, "GET", r"^/v2/$")
    with CountingProxy(registry, fault=drop) as proxy, httpx.Client(base_url=proxy.url) as client:
        with pytest.raises(httpx.TransportError):
            client.get("/v2/")
        start = client.post("/v2/lib/app/blobs/uploads/")
        location = httpx.URL(start.headers["Location"])
        assert location.netloc.decode() == proxy.host
        chunks = (data[i : i + 1_000_000] for i in range(0, len(data), 1_000_000))
        patch = client.patch(location, content=chunks)  # no length: Transfer-Encoding chunked
        assert patch.status_code == 202, patch.text
        done = httpx.URL(patch.headers["Location"]).copy_merge_params({"digest": sha256(data)})
        assert client.put(done).status_code == 201
    assert fetch_blob(registry, "lib/app", sha256(data)) == data


def test_relative_urls_mode_answers_relative_locations(
    registry_factory: RegistryFactory,
) -> None:
    server = registry_factory(relative_urls=True)
    start = httpx.post(f"{server.url}/v2/lib/app/blobs/uploads/")
    assert start.headers["Location"].startswith("/v2/lib/app/blobs/uploads/")
    digest = push_image(server, "lib/app", "v1", layers=[b"relative"])
    assert manifest_digest(server, "lib/app", "v1") == digest
