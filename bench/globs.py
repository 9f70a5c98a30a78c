"""One glob task over many repositories beside `skopeo sync` given the same repositories as a
list. Not a test: prints times, ratios, requests per tag and peak RSS.

    .venv/bin/python bench/globs.py [--repos 1000] [--tags 5] [--delay-ms 25 | 0]
                                    [--no-loopback] [--no-skopeo | --no-regsync]
                                    [--concurrency 5]

regsync runs `regsyncd once` with one rule `corpus/*` -> `mirror/corpus/*` (its repositories
come from the catalog); skopeo gets `corpus/app0 ... corpus/appN` in its YAML source. Both copy
into a fresh target, then re-run (the no-op). With `--delay-ms`, both registries sit behind
`DelayProxy` (that delay each way: a WAN like Docker Hub's from a datacentre). Requests are read
from the registries' access logs: per tag, and the source's manifest GETs of the no-op (zero is
the promise: HEADs only).
"""

from __future__ import annotations

import argparse
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
from support.registry import RegistryServer
from support.wanproxy import DelayProxy

REGSYNCD = str(Path(sys.executable).parent / "regsyncd")


class Endpoint(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def host(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    max_rss_mb: float


def run_measured(argv: list[str]) -> Sample:
    """Wall time and peak RSS (VmHWM from /proc while it runs), as bench/bench.py measures."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        peak_kb = 0
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text(encoding="ascii")
                peak_kb = max(peak_kb, *(int(line.split()[1]) for line in status.splitlines()
                                         if line.startswith("VmHWM:")))
            except (OSError, ValueError, TypeError):
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{argv[0]} failed ({proc.returncode}):\n"
                             f"{err.read().decode(errors='replace')[-3000:]}")
    return Sample(seconds, peak_kb / 1024)


def skopeo_argv(src: Endpoint, dst: Endpoint, repos: list[str], path: Path) -> list[str]:
    path.write_text(yaml.safe_dump({src.host: {"tls-verify": False,
                                               "images": {repo: [] for repo in repos}}}))
    return ["skopeo", "sync", "--all", "--preserve-digests", "--src", "yaml", "--dest", "docker",
            "--dest-tls-verify=false", str(path), f"{dst.host}/mirror"]


def regsync_argv(src: Endpoint, dst: Endpoint, path: Path, concurrency: int) -> list[str]:
    config = {
        "version": "1.0",
        "global": {"concurrency": concurrency},
        "registries": {"src": {"url": src.url}, "dst": {"url": dst.url}},
        "sync_rules": [{"name": "corpus", "source": {"registry": "src", "repository": "corpus/*"},
                        "target": {"registry": "dst", "repository": "mirror/corpus/*"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return [REGSYNCD, "once", "--config", str(path)]


def requests(src: RegistryServer, dst: RegistryServer, marks: tuple[int, int]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for side, server, mark in (("source", src, marks[0]), ("target", dst, marks[1])):
        for entry in server.access_log()[mark:]:
            kind = ("catalog" if "/_catalog" in entry.path else "tags" if "/tags/list" in entry.path
                    else "manifest" if "/manifests/" in entry.path
                    else "blob" if "/blobs/" in entry.path else "other")
            counts[f"{side} {entry.method} {kind}"] += 1
    return counts


def measured(name: str, argv: list[str], src: RegistryServer, dst: RegistryServer,
             tags: int) -> Sample:
    marks = (len(src.access_log()), len(dst.access_log()))
    sample = run_measured(argv)
    counts = requests(src, dst, marks)
    shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"  {name:<22} {sample.seconds:8.2f}s  peak RSS {sample.max_rss_mb:6.1f} MB  "
          f"{sum(counts.values()) / tags:5.2f} requests/tag ({shown})", flush=True)
    return sample


def one_setting(tmp: Path, src: RegistryServer, spec: CorpusSpec, args: argparse.Namespace,
                delay: float) -> None:
    repos = spec.repo_names()
    tags = spec.repos * spec.tags_per_repo
    where = f"{2 * delay * 1000:.0f} ms round trips" if delay else "loopback"
    print(f"{where}: {spec.repos} repositories x {spec.tags_per_repo} tags", flush=True)
    results: dict[str, float] = {}
    tools: dict[str, Callable[[Endpoint, Endpoint, Path], list[str]]] = {}
    if args.regsync:
        tools["regsync"] = lambda s, d, p: regsync_argv(s, d, p, args.concurrency)
    if args.skopeo:
        tools["skopeo"] = lambda s, d, p: skopeo_argv(s, d, repos, p)
    for name, tool in tools.items():
        with RegistryServer("anonymous", workdir=tmp / name) as dst:
            if delay:
                with DelayProxy(src.port, delay=delay) as s, DelayProxy(dst.port, delay=delay) as d:
                    argv = tool(s, d, tmp / f"{name}.yaml")
                    results[f"{name} full"] = measured(f"{name} full sync", argv, src, dst,
                                                       tags).seconds
                    results[f"{name} no-op"] = measured(f"{name} no-op", argv, src, dst,
                                                        tags).seconds
            else:
                argv = tool(src, dst, tmp / f"{name}.yaml")
                results[f"{name} full"] = measured(f"{name} full sync", argv, src, dst,
                                                   tags).seconds
                results[f"{name} no-op"] = measured(f"{name} no-op", argv, src, dst,
                                                    tags).seconds
    if args.skopeo and args.regsync:
        print(f"  => full sync {results['regsync full'] / results['skopeo full']:.3f}x skopeo,"
              f" no-op {results['regsync no-op'] / results['skopeo no-op']:.3f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--tags", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=25.0, help="each way; 0: no WAN run")
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--skopeo", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--regsync", action=argparse.BooleanOptionalAction, default=True,
                        help="--no-regsync: skopeo alone (its slow WAN run beside other work)")
    parser.add_argument("--loopback", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    spec = CorpusSpec(repos=args.repos, tags_per_repo=args.tags, shared_layers=1,
                      shared_layer_size=64 * 1024, unique_layer_size=4 * 1024,
                      repo_prefix="corpus/app")
    with tempfile.TemporaryDirectory(prefix="regsync-globs-") as tmp_dir:
        tmp = Path(tmp_dir)
        # one source for every setting: pushing 5,000 images takes minutes on a loaded machine
        with RegistryServer("anonymous", workdir=tmp / "src") as src:
            started = time.perf_counter()
            build_corpus(src, spec)
            print(f"(corpus of {spec.repos} x {spec.tags_per_repo} pushed in"
                  f" {time.perf_counter() - started:.0f}s)", flush=True)
            if args.loopback:
                one_setting(tmp / "loopback", src, spec, args, 0.0)
            if args.delay_ms:
                one_setting(tmp / "wan", src, spec, args, args.delay_ms / 1000)


if __name__ == "__main__":
    main()
