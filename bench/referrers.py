"""What referrers cost a no-op re-run: requests per tag with `referrers: false` and on, on the
source and the target. Not a test: prints figures (README, "Requests on the copy path").

    .venv/bin/python bench/referrers.py

The corpus is the README's: 5 single images and 5 two-platform OCI indexes with attestation
entries in one repository of distribution 2.8 (no Referrers API: the tag schemes), 3 indexes
signed by cosign (`.sig`), one image with an SBOM in its fallback index (`sha256-<hex>`); then
the same through the test bed's fake registry with the Referrers API as the source. Each rule
syncs once into a fresh target, then again: the second run is the one counted, from the
registries' access logs (the fake counts its own requests).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.fakeregistry import FakeRegistry
from support.images import push_artifact, push_cosign, push_image, push_index_info, random_layer
from support.registry import RegistryServer
from support.syncrun import make_config, rule, run_sync

TAGS = 10


def _corpus(src: RegistryServer) -> None:
    for i in range(5):
        digest = push_image(src, "app", f"img{i}", layers=[random_layer(500, f"i{i}")], oci=True)
        if i == 0:
            push_artifact(src, "app", digest, artifact_type="application/spdx+json",
                          payload=b'{"spdx": 1}')
    for i in range(5):
        info = push_index_info(src, "app", f"idx{i}")
        if i < 3:
            push_cosign(src, "app", info.digest)


async def _noop(data: dict[str, Any]) -> None:
    first = await run_sync(data)
    assert first.ok, first.results


def _per_tag(count: int) -> str:
    return f"{count / TAGS:.1f}"


async def _registry_source(tmp: Path) -> None:
    with RegistryServer("anonymous", workdir=tmp / "src") as src:
        _corpus(src)
        for referrers in (False, True):
            with RegistryServer("anonymous", workdir=tmp / f"dst-{referrers}") as dst:
                data = make_config({"src": src, "dst": dst},
                                   [rule("app", "m", referrers=referrers)])
                await _noop(data)
                before_src, before_dst = src.count("*", "^/v2/.+"), dst.count("*", "^/v2/.+")
                gets = src.count("GET", "/manifests/")
                again = await run_sync(data)
                assert again.ok and again.referrers_copied == 0
                print(f"distribution source, referrers {'on' if referrers else 'off'}: "
                      f"source {_per_tag(src.count('*', '^/v2/.+') - before_src)}, target "
                      f"{_per_tag(dst.count('*', '^/v2/.+') - before_dst)} requests per tag; "
                      f"source manifest GETs {src.count('GET', '/manifests/') - gets}")


async def _api_source(tmp: Path) -> None:
    with FakeRegistry() as fake, RegistryServer("anonymous", workdir=tmp / "api-dst") as dst:
        for i in range(TAGS):
            image = fake.add_image("app", f"img{i}", b"layer %d" % i)
            if i < 3:
                fake.add_referrer("app", image, b"sbom %d" % i, "application/spdx+json")
        for referrers in (False, True):
            data = make_config({"src": fake.url, "dst": dst},
                               [rule("app", f"m{int(referrers)}", referrers=referrers)])
            await _noop(data)
            before, before_dst = len(fake.requests), dst.count("*", "^/v2/.+")
            again = await run_sync(data)
            assert again.ok and again.referrers_copied == 0
            print(f"Referrers API source (10 images, 3 with an SBOM), referrers "
                  f"{'on' if referrers else 'off'}: source "
                  f"{_per_tag(len(fake.requests) - before)}, target "
                  f"{_per_tag(dst.count('*', '^/v2/.+') - before_dst)} requests per tag")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await _registry_source(Path(tmp))
        await _api_source(Path(tmp))


if __name__ == "__main__":
    trio.run(main)
