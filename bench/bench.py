"""regsync vs skopeo sync, side by side on the same local registries. Not a test: prints figures.

    .venv/bin/python bench/bench.py [--rounds 3] [--repos 8] [--tags 6] [--platforms 4]
                                    [--large-mb 1024]

Measurements, each alternating which tool goes first per round:
- full sync of a corpus (repos x tags, shared base layers) into an empty target, twice: once
  with single-arch images, once with multi-arch indexes (N platforms + attestations, the shape
  of Docker's official images, which is what mirrors mostly hold);
- no-op re-sync of the same corpus into the target that already has it;
- peak RSS while copying one large layer (default 1 GB).
regsync runs as `regsyncd once`, skopeo as `skopeo sync --all --preserve-digests` from a YAML
source list, each a separate process timed from spawn to exit (start-up included).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.images import CorpusSpec, build_corpus
from support.registry import RegistryServer

REGSYNCD = str(Path(sys.executable).parent / "regsyncd")


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    max_rss_mb: float


def run_measured(argv: list[str]) -> Sample:
    """Run a command; wall time and its peak RSS.

    Peak RSS is read from /proc/PID/status (VmHWM) while it runs: wait4's ru_maxrss would
    include this benchmark's own memory, which a forked child inherits as its high-water mark.
    """
    with tempfile.TemporaryFile() as err:  # a pipe could fill up and stall the child
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return Sample(seconds, peak_kb / 1024)


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def regsync_config(src: RegistryServer, dst: RegistryServer, repos: list[str], path: Path,
                   concurrency: int) -> Path:
    config = {
        "version": "1.0",
        "global": {"concurrency": concurrency},
        "registries": {"src": {"url": src.url}, "dst": {"url": dst.url}},
        "sync_rules": [
            {"name": repo.replace("/", "-"),
             "source": {"registry": "src", "repository": repo},
             "target": {"registry": "dst", "repository": f"mirror/{repo}"}}
            for repo in repos
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def skopeo_argv(src: RegistryServer, dst: RegistryServer, repos: list[str], path: Path) -> list[str]:
    path.write_text(yaml.safe_dump(
        {src.host: {"tls-verify": False, "images": {repo: [] for repo in repos}}}
    ))
    return ["skopeo", "sync", "--all", "--preserve-digests", "--src", "yaml", "--dest", "docker",
            "--dest-tls-verify=false", str(path), f"{dst.host}/mirror"]


def compare(name: str, rounds: int, regsync: Callable[[int], Sample],
            skopeo: Callable[[int], Sample]) -> tuple[Sample, Sample]:
    ours: list[Sample] = []
    theirs: list[Sample] = []
    for i in range(rounds):
        pair = [(ours, regsync), (theirs, skopeo)]
        for samples, fn in (pair if i % 2 == 0 else pair[::-1]):
            samples.append(fn(i))
    a = Sample(statistics.median(s.seconds for s in ours), max(s.max_rss_mb for s in ours))
    b = Sample(statistics.median(s.seconds for s in theirs), max(s.max_rss_mb for s in theirs))
    print(f"{name:<22} regsync {a.seconds:7.2f}s {a.max_rss_mb:6.0f} MB | skopeo "
          f"{b.seconds:7.2f}s {b.max_rss_mb:6.0f} MB | time ratio {a.seconds / b.seconds:.2f}x",
          flush=True)
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repos", type=int, default=8)
    parser.add_argument("--tags", type=int, default=6)
    parser.add_argument("--layer-kb", type=int, default=2048, help="shared base layer size")
    parser.add_argument("--large-mb", type=int, default=1024, help="0 skips the RSS measurement")
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--platforms", type=int, default=4,
                        help="also a corpus of multi-arch indexes with this many platforms (0: no)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="regsync-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        results: list[tuple[str, tuple[Sample, Sample], tuple[Sample, Sample]]] = []
        for platforms in (0, args.platforms) if args.platforms else (0,):
            spec = CorpusSpec(repos=args.repos, tags_per_repo=args.tags, shared_layers=2,
                              shared_layer_size=args.layer_kb * 1024,
                              unique_layer_size=512 * 1024, platforms=platforms)
            label = f"{platforms} platforms" if platforms else "single-arch"
            full, noop = compare_corpus(tmp / label.replace(" ", "-"), label, spec, args)
            results.append((label, full, noop))

        rss: tuple[Sample, Sample] | None = None
        if args.large_mb:
            large = CorpusSpec(repos=1, tags_per_repo=1, shared_layers=0,
                               large_layer_size=args.large_mb * 1024 * 1024, repo_prefix="big/app")
            with RegistryServer("anonymous", workdir=tmp / "big-src") as src:
                print(f"building a {args.large_mb} MB layer ...", flush=True)
                build_corpus(src, large)
                repos = large.repo_names()
                rss = compare(f"{args.large_mb} MB layer", 1,
                              lambda i: _once_into(tmp, "r", src, repos, ours_fn=True,
                                                   concurrency=args.concurrency),
                              lambda i: _once_into(tmp, "s", src, repos, ours_fn=False,
                                                   concurrency=args.concurrency))

    print()
    for label, full, noop in results:
        print(f"{label:<12} full sync {full[0].seconds / full[1].seconds:.2f}x skopeo (target"
              f" <= 0.40x), no-op re-sync {noop[0].seconds / noop[1].seconds:.2f}x (target"
              " <= 0.15x)")
    if rss:
        print(f"peak RSS, large:   regsync {rss[0].max_rss_mb:.0f} MB, skopeo "
              f"{rss[1].max_rss_mb:.0f} MB (target <= 120 MB)")


def compare_corpus(tmp: Path, label: str, spec: CorpusSpec,
                   args: argparse.Namespace) -> tuple[tuple[Sample, Sample], tuple[Sample, Sample]]:
    """Full sync into empty targets, then no-op re-syncs into them; (regsync, skopeo) each."""
    with RegistryServer("anonymous", workdir=tmp / "src") as src:
        print(f"building corpus: {spec.repos} repos x {spec.tags_per_repo} tags, {label} ...",
              flush=True)
        build_corpus(src, spec)
        repos = spec.repo_names()
        targets: dict[str, RegistryServer] = {}

        def fresh(tool: str, i: int) -> RegistryServer:
            old = targets.pop(tool, None)
            if old is not None:
                old.stop()
            targets[tool] = RegistryServer("anonymous", workdir=tmp / f"{tool}-{i}")
            targets[tool].start()
            return targets[tool]

        def ours(dst: RegistryServer, i: int) -> Sample:
            cfg = regsync_config(src, dst, repos, tmp / f"regsync-{i}.yaml", args.concurrency)
            return run_measured([REGSYNCD, "once", "--config", str(cfg)])

        def theirs(dst: RegistryServer, i: int) -> Sample:
            return run_measured(skopeo_argv(src, dst, repos, tmp / f"skopeo-{i}.yaml"))

        try:
            full = compare("full sync", args.rounds,
                           lambda i: ours(fresh("regsync", i), i),
                           lambda i: theirs(fresh("skopeo", i), i))
            noop = compare("no-op re-sync", args.rounds,
                           lambda i: ours(targets["regsync"], i),
                           lambda i: theirs(targets["skopeo"], i))
        finally:
            for server in targets.values():
                server.stop()
    return full, noop


def _once_into(tmp: Path, tag: str, src: RegistryServer, repos: list[str], *, ours_fn: bool,
               concurrency: int) -> Sample:
    with RegistryServer("anonymous", workdir=tmp / f"big-dst-{tag}") as dst:
        if ours_fn:
            cfg = regsync_config(src, dst, repos, tmp / f"big-{tag}.yaml", concurrency)
            return run_measured([REGSYNCD, "once", "--config", str(cfg)])
        return run_measured(skopeo_argv(src, dst, repos, tmp / f"big-{tag}.yaml"))


if __name__ == "__main__":
    main()
