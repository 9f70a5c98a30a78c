"""regsync over a WAN (loopback + a delay proxy) beside skopeo, and on loopback beside a bare
copier. Not a test: prints figures, and the requests each run cost from the registries' logs.

    .venv/bin/python bench/wan.py [--delay-ms 25] [--repos 4] [--tags 8] [--platforms 2]
                                  [--rounds 3] [--skopeo-rounds 1] [--no-skopeo]
                                  [--loopback-rounds 3] [--no-wan]

Each registry sits behind its own `DelayProxy` (`delay` each way, so a round trip costs twice
it); both tools talk only to the proxies. For every run the target's and the source's access
logs are read: requests per tag (manifests, both sides) and per blob placed on the target
(HEAD/POST/PUT/PATCH/DELETE on blobs, over the blobs committed or mounted there). Loopback runs
compare `regsyncd once` with `bare.py` (no auth, no retries: the floor for a copier in Python).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.images import CorpusSpec, build_corpus
from support.registry import AccessEntry, RegistryServer
from support.wanproxy import DelayProxy

BARE = [sys.executable, str(ROOT / "bench" / "bare.py")]
REGSYNCD = str(Path(sys.executable).parent / "regsyncd")


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float


def run_measured(argv: list[str]) -> Sample:
    """Wall time of a command, from spawn to exit (start-up included)."""
    with tempfile.TemporaryFile() as err:  # a pipe could fill up and stall the child
        started = time.perf_counter()
        code = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=err)
        seconds = time.perf_counter() - started
        err.seek(0)
        if code != 0:
            raise SystemExit(f"{argv[0]} failed ({code}):\n{err.read().decode()[-3000:]}")
    return Sample(seconds)


class Endpoint(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def host(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Cost:
    """Requests one run cost, read from the registries' access logs."""

    tags: int
    placed: int  # blobs committed (PUT 201) or mounted (POST 201) on the target
    target_blob: Counter[str]
    target_manifest: Counter[str]
    source: Counter[str]

    def line(self) -> str:
        blob = sum(self.target_blob.values())
        per_blob = f"{blob / self.placed:.2f}" if self.placed else "-"
        manifests = sum(self.target_manifest.values()) + sum(
            n for k, n in self.source.items() if k.endswith("manifest"))
        return (f"target blob requests {blob} for {self.placed} placed = {per_blob}/blob "
                f"{dict(sorted(self.target_blob.items()))}; manifest requests/tag "
                f"{manifests / self.tags:.2f} (target {dict(sorted(self.target_manifest.items()))}"
                f", source {dict(sorted(self.source.items()))})")


def _kind(entry: AccessEntry) -> str:
    return "manifest" if "/manifests/" in entry.path else "blob" if "/blobs/" in entry.path else ""


def cost(src: RegistryServer, dst: RegistryServer, marks: tuple[int, int], tags: int) -> Cost:
    source = [e for e in src.access_log()[marks[0]:] if _kind(e)]
    target = [e for e in dst.access_log()[marks[1]:] if _kind(e)]
    placed = sum(1 for e in target if e.method in ("PUT", "POST") and e.status == 201
                 and "/blobs/" in e.path)
    return Cost(
        tags, placed,
        Counter(e.method for e in target if _kind(e) == "blob"),
        Counter(e.method for e in target if _kind(e) == "manifest"),
        Counter(f"{e.method} {_kind(e)}" for e in source),
    )


def regsync_argv(src: Endpoint, dst: Endpoint, repos: list[str], path: Path,
                 concurrency: int) -> list[str]:
    config = {
        "version": "1.0",
        "global": {"concurrency": concurrency},
        "registries": {"src": {"url": src.url}, "dst": {"url": dst.url}},
        "sync_rules": [
            {"name": repo.replace("/", "-"), "source": {"registry": "src", "repository": repo},
             "target": {"registry": "dst", "repository": f"mirror/{repo}"}}
            for repo in repos
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return [REGSYNCD, "once", "--config", str(path)]


def skopeo_argv(src: Endpoint, dst: Endpoint, repos: list[str], path: Path) -> list[str]:
    path.write_text(yaml.safe_dump({src.host: {"tls-verify": False,
                                               "images": {repo: [] for repo in repos}}}))
    return ["skopeo", "sync", "--all", "--preserve-digests", "--src", "yaml", "--dest", "docker",
            "--dest-tls-verify=false", str(path), f"{dst.host}/mirror"]


def bare_argv(src: Endpoint, dst: Endpoint, repos: list[str], concurrency: int) -> list[str]:
    return [*BARE, src.url, dst.url, str(concurrency), *repos]


Tool = Callable[[Endpoint, Endpoint, Path], list[str]]


def timed(name: str, tool: Tool, src: RegistryServer, dst: RegistryServer, via: tuple[Endpoint,
          Endpoint], path: Path, tags: int) -> tuple[Sample, Cost]:
    marks = (len(src.access_log()), len(dst.access_log()))
    sample = run_measured(tool(via[0], via[1], path))
    spent = cost(src, dst, marks, tags)
    print(f"  {name:<26} {sample.seconds:7.2f}s  {spent.line()}", flush=True)
    return sample, spent


def wan(tmp: Path, spec: CorpusSpec, args: argparse.Namespace) -> None:
    repos = spec.repo_names()
    tags = spec.repos * spec.tags_per_repo
    label = f"{spec.platforms} platforms + attestations" if spec.platforms else "single image"
    print(f"WAN {2 * args.delay_ms} ms round trips, {spec.repos} repos x {spec.tags_per_repo} "
          f"tags, {label}, concurrency {args.concurrency}:", flush=True)
    delay = args.delay_ms / 1000
    with RegistryServer("anonymous", workdir=tmp / "src") as src:
        build_corpus(src, spec)
        tools: dict[str, Tool] = {
            "regsync": lambda s, d, p: regsync_argv(s, d, repos, p, args.concurrency)}
        if args.skopeo:
            tools["skopeo"] = lambda s, d, p: skopeo_argv(s, d, repos, p)
        times: dict[str, list[float]] = {}
        for name, tool in tools.items():
            for i in range(args.rounds if name == "regsync" else args.skopeo_rounds):
                with RegistryServer("anonymous", workdir=tmp / f"{name}-{i}") as dst, \
                        DelayProxy(src.port, delay=delay) as s, \
                        DelayProxy(dst.port, delay=delay) as d:
                    path = tmp / f"{name}-{i}.yaml"
                    full, _ = timed(f"{name} full sync", tool, src, dst, (s, d), path, tags)
                    noop, _ = timed(f"{name} no-op", tool, src, dst, (s, d), path, tags)
                    times.setdefault(f"{name} full", []).append(full.seconds)
                    times.setdefault(f"{name} no-op", []).append(noop.seconds)
    medians = {k: statistics.median(v) for k, v in times.items()}
    if args.skopeo:
        print(f"  => full sync {medians['regsync full'] / medians['skopeo full']:.3f}x skopeo "
              f"(goal <= 0.06x), no-op {medians['regsync no-op'] / medians['skopeo no-op']:.3f}x"
              " (goal <= 0.03x)", flush=True)


def loopback(tmp: Path, spec: CorpusSpec, args: argparse.Namespace) -> None:
    repos = spec.repo_names()
    tags = spec.repos * spec.tags_per_repo
    print(f"loopback, {spec.repos} repos x {spec.tags_per_repo} tags, platforms "
          f"{spec.platforms}:", flush=True)
    with RegistryServer("anonymous", workdir=tmp / "lsrc") as src:
        build_corpus(src, spec)
        tools: dict[str, Tool] = {
            "regsync": lambda s, d, p: regsync_argv(s, d, repos, p, args.concurrency),
            "bare copier": lambda s, d, p: bare_argv(s, d, repos, args.concurrency),
        }
        times: dict[str, list[float]] = {}
        for i in range(args.loopback_rounds):
            order = list(tools.items()) if i % 2 == 0 else list(tools.items())[::-1]
            for name, tool in order:
                with RegistryServer("anonymous", workdir=tmp / f"l{name}-{i}") as dst:
                    sample, _ = timed(f"{name} full sync", tool, src, dst, (src, dst),
                                      tmp / f"l-{i}.yaml", tags)
                    times.setdefault(name, []).append(sample.seconds)
    ours, bare = (statistics.median(times[k]) for k in ("regsync", "bare copier"))
    print(f"  => loopback full sync: regsync {ours:.2f}s, bare copier {bare:.2f}s "
          f"({ours / bare:.2f}x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=25.0, help="each way")
    parser.add_argument("--repos", type=int, default=4)
    parser.add_argument("--tags", type=int, default=8)
    parser.add_argument("--platforms", type=int, default=2, help="also an index corpus (0: no)")
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--layer-kb", type=int, default=2048, help="shared base layer size")
    parser.add_argument("--unique-kb", type=int, default=512, help="each tag's own layer")
    parser.add_argument("--rounds", type=int, default=3, help="regsync's rounds (medians)")
    parser.add_argument("--skopeo-rounds", type=int, default=1, help="~90 s each")
    parser.add_argument("--skopeo", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--loopback-rounds", type=int, default=3, help="0 skips loopback")
    parser.add_argument("--wan", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    single = CorpusSpec(repos=args.repos, tags_per_repo=args.tags, shared_layers=2,
                        shared_layer_size=args.layer_kb * 1024,
                        unique_layer_size=args.unique_kb * 1024)
    with tempfile.TemporaryDirectory(prefix="regsync-wan-") as tmp_dir:
        tmp = Path(tmp_dir)
        if args.wan:
            wan(tmp / "single", single, args)
            if args.platforms:
                index = CorpusSpec(repos=args.repos, tags_per_repo=args.tags // 2,
                                   shared_layers=2, shared_layer_size=args.layer_kb * 1024,
                                   unique_layer_size=args.unique_kb * 1024,
                                   platforms=args.platforms)
                # counts and times for regsync only: skopeo over a WAN takes minutes here
                wan(tmp / "index", index, argparse.Namespace(**{**vars(args), "skopeo": False}))
        if args.loopback_rounds:
            loopback(tmp / "loop", CorpusSpec(repos=8, tags_per_repo=6, shared_layers=2,
                                              shared_layer_size=2 * 1024 * 1024,
                                              unique_layer_size=512 * 1024), args)


if __name__ == "__main__":
    main()
