"""A bare copier: the least a Python client can do to copy tags, for loopback comparisons.

    python bench/bare.py SRC_URL DST_URL CONCURRENCY REPO...   (into DST/mirror/REPO)

No auth, no retries, no digest checks, no platform logic: GET each tag's manifest (and an
index's children), then per blob HEAD on the target and, if absent, GET + POST + one PUT with
the bytes in memory, then PUT the manifests. trio + httpx, `CONCURRENCY` blobs at once.
"""

from __future__ import annotations

import json
import sys

import httpx
import trio

ACCEPT = (
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)


class Bare:
    def __init__(self, src: httpx.AsyncClient, dst: httpx.AsyncClient, blobs: int) -> None:
        self.src, self.dst = src, dst
        self.limiter = trio.CapacityLimiter(blobs)
        self.done: dict[tuple[str, str], trio.Event] = {}

    async def blob(self, repo: str, target: str, digest: str) -> None:
        key = (target, digest)
        if key in self.done:
            await self.done[key].wait()
            return
        self.done[key] = trio.Event()
        if (await self.dst.head(f"/v2/{target}/blobs/{digest}")).status_code != 200:
            async with self.limiter:
                data = (await self.src.get(f"/v2/{repo}/blobs/{digest}")).content
                location = (await self.dst.post(f"/v2/{target}/blobs/uploads/")).headers["location"]
                joiner = "&" if "?" in location else "?"
                put = await self.dst.put(f"{location}{joiner}digest={digest}", content=data)
                put.raise_for_status()
        self.done[key].set()

    async def manifest(self, repo: str, target: str, ref: str, put_as: str) -> None:
        got = await self.src.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
        got.raise_for_status()
        document = json.loads(got.content)
        async with trio.open_nursery() as nursery:
            if "manifests" in document:
                for child in document["manifests"]:
                    nursery.start_soon(self.manifest, repo, target, child["digest"], child["digest"])
            else:
                for blob in [document["config"], *document["layers"]]:
                    nursery.start_soon(self.blob, repo, target, blob["digest"])
        media_type = got.headers["content-type"]
        put = await self.dst.put(f"/v2/{target}/manifests/{put_as}", content=got.content,
                                 headers={"Content-Type": media_type})
        put.raise_for_status()

    async def repo(self, repo: str, tags: trio.CapacityLimiter) -> None:
        listed = (await self.src.get(f"/v2/{repo}/tags/list")).json()["tags"]
        async with trio.open_nursery() as nursery:
            for tag in listed:
                nursery.start_soon(self.tag, repo, tag, tags)

    async def tag(self, repo: str, tag: str, tags: trio.CapacityLimiter) -> None:
        async with tags:
            await self.manifest(repo, f"mirror/{repo}", tag, tag)


async def main(src_url: str, dst_url: str, blobs: int, repos: list[str]) -> None:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=src_url, limits=limits, timeout=600) as src, \
            httpx.AsyncClient(base_url=dst_url, limits=limits, timeout=600) as dst:
        bare = Bare(src, dst, blobs)
        tags = trio.CapacityLimiter(32)
        async with trio.open_nursery() as nursery:
            for repo in repos:
                nursery.start_soon(bare.repo, repo, tags)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:])
