"""Copies over TLS through the real registry serving a self-signed certificate.

The registry client's own HTTP/1.1 transport does the TLS (trio.SSLStream): these tests are what
proves `ca_file`, `insecure` and the certificate errors work end to end.
"""

from __future__ import annotations

from typing import Any

import pytest
from regsync.daemon.engine.events import Outcome
from support.images import manifest_digest, push_image, push_index, random_layer
from support.registry import RegistryFactory, RegistryServer
from support.syncrun import make_config, outcomes, rule, run_sync

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_registry(registry_factory: RegistryFactory) -> RegistryServer:
    return registry_factory(tls=True)


def with_source(data: dict[str, Any], **settings: Any) -> dict[str, Any]:
    data["registries"]["src"] |= settings
    return data


async def test_copy_from_and_to_tls_registries_with_their_ca_files(
    registry_factory: RegistryFactory,
) -> None:
    src, dst = registry_factory(tls=True), registry_factory(tls=True)
    push_image(src, "app", "1.0", layers=[random_layer(300_000, seed=1)])
    push_index(src, "app", "2.0", oci=True, attestations=True)
    data = make_config({"src": src, "dst": dst}, [rule("app", "mirror/app")])
    data["registries"]["src"]["ca_file"] = str(src.cert_path)
    data["registries"]["dst"]["ca_file"] = str(dst.cert_path)

    report = await run_sync(data)

    assert report.ok, report.results
    assert outcomes(report) == {"1.0": Outcome.COPIED, "2.0": Outcome.COPIED}
    for tag in ("1.0", "2.0"):
        assert manifest_digest(dst, "mirror/app", tag) == manifest_digest(src, "app", tag)
    again = await run_sync(data)
    assert outcomes(again) == {"1.0": Outcome.SKIPPED, "2.0": Outcome.SKIPPED}


async def test_untrusted_certificate_is_refused_with_a_hint(
    tls_registry: RegistryServer, registry: RegistryServer
) -> None:
    push_image(tls_registry, "app", "1.0", layers=[random_layer(1000, seed=1)])
    data = make_config({"src": tls_registry, "dst": registry}, [rule("app", "mirror/app")])

    report = await run_sync(data)

    [failure] = [r for r in report.results if r.outcome is Outcome.FAILED]
    assert f"TLS certificate of {tls_registry.host} not trusted" in failure.reason
    assert "ca_file" in failure.reason
    assert manifest_digest(registry, "mirror/app", "1.0") is None


async def test_insecure_skips_verification(
    tls_registry: RegistryServer, registry: RegistryServer
) -> None:
    push_image(tls_registry, "app", "1.0", layers=[random_layer(1000, seed=1)])
    data = make_config({"src": tls_registry, "dst": registry}, [rule("app", "mirror/app")])

    report = await run_sync(with_source(data, insecure=True))

    assert outcomes(report) == {"1.0": Outcome.COPIED}


async def test_https_url_for_a_plain_http_registry_says_so(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    push_image(registry, "app", "1.0", layers=[random_layer(1000, seed=1)])
    data = make_config({"src": registry, "dst": registry2}, [rule("app", "mirror/app")])
    data["registries"]["src"]["url"] = registry.url.replace("http://", "https://")

    report = await run_sync(data)

    [failure] = [r for r in report.results if r.outcome is Outcome.FAILED]
    assert f"TLS handshake with {registry.host} failed" in failure.reason
    assert "http://" in failure.reason
