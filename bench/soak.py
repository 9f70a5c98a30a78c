"""Soak: does a long-running daemon stay flat? Memory and open files across many no-op re-syncs.

    .venv/bin/python bench/soak.py [--repos 200] [--tags 50] [--rounds 20] [--max-running 4]

Two local registries; the source holds `repos` repositories of `tags` real tags each (a few small
images per repository, each tag a manifest PUT of its own: tags are real, content is shared).
`regsyncd serve` runs as its own process with one task per repository. A first round copies
everything; then every round runs every task through the API (RunTask for all, wait until none
is queued or running), each one a no-op (every tag unchanged: HEADs only). After each round the
daemon's RSS (/proc/PID/status VmRSS), open file descriptors (/proc/PID/fd) and threads are
sampled; the table and the last/first ratios are printed. Growth across no-op rounds is a leak.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.images import Pusher, push_image_blobs, random_layer
from support.registry import RegistryServer, free_port

REGSYNCD = str(Path(sys.executable).parent / "regsyncd")
ACTIVE = [pb.EXECUTION_STATUS_QUEUED, pb.EXECUTION_STATUS_RUNNING]


@dataclass(frozen=True, slots=True)
class Sample:
    round: int
    seconds: float
    rss_kb: int
    fds: int
    threads: int
    succeeded: int
    copied: int
    skipped: int


# The corpus ---------------------------------------------------------------------------------


def repo_name(index: int) -> str:
    return f"soak/app{index:03d}"


def push_repo(server: RegistryServer, repo: str, tags: int, images: int) -> None:
    """`images` small images (one shared layer, a config each), `tags` tags spread over them."""
    with Pusher(server) as pusher:
        layer = pusher.push_blob(repo, random_layer(2048, seed=repo))
        bodies = []
        for i in range(images):
            own = pusher.push_blob(repo, random_layer(512, seed=f"{repo}:{i}"))
            bodies.append(push_image_blobs(pusher, repo, None, [layer, own], oci=i % 2 == 1))
        for t in range(tags):
            image = bodies[t % images]
            manifest = pusher.client.get(f"/v2/{repo}/manifests/{image.digest}", headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json,"
                          "application/vnd.docker.distribution.manifest.v2+json"})
            pusher.push_manifest(repo, f"1.{t}.0", manifest.content,
                                 manifest.headers["Content-Type"])


def build_corpus(server: RegistryServer, repos: int, tags: int, images: int) -> float:
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: push_repo(server, repo_name(i), tags, images), range(repos)))
    return time.monotonic() - start


def config_text(src: RegistryServer, dst: RegistryServer, repos: int) -> str:
    rules = "".join(
        f"  - {{name: app{i:03d}, source: {{registry: src, repository: {repo_name(i)}}},"
        f" target: {{registry: dst, repository: mirror/app{i:03d}}}}}\n" for i in range(repos))
    return (f'version: "1.0"\nglobal: {{concurrency: 8, timeout: 60s}}\n'
            f"registries:\n  src: {{url: '{src.url}'}}\n  dst: {{url: '{dst.url}'}}\n"
            f"sync_rules:\n{rules}")


# The daemon ---------------------------------------------------------------------------------


@contextmanager
def daemon(tmp: Path, config: Path, max_running: int) -> Iterator[tuple[int, str]]:
    """`regsyncd serve` (no panel) until the block ends; yields (pid, address)."""
    address = f"127.0.0.1:{free_port()}"
    log_path = tmp / "regsyncd.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [REGSYNCD, "serve", "--db", str(tmp / "db.sqlite"), "--listen", address, "--config",
         str(config), "--ui-port", "0", "--max-running", str(max_running)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        channel = grpc.insecure_channel(address)
        ready = grpc.channel_ready_future(channel)
        deadline = time.monotonic() + 60
        while not ready.done():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"regsyncd did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.1)
        channel.close()
        yield process.pid, address
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def sample_process(pid: int) -> tuple[int, int, int]:
    """(VmRSS in kB, open file descriptors, threads) of a live process."""
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return int(fields["VmRSS"][0]), len(os.listdir(f"/proc/{pid}/fd")), int(fields["Threads"][0])


def run_round(stubs: Any, tasks: list[str]) -> tuple[float, list[pb.Execution]]:
    """RunTask for every task, wait until none is queued or running; the executions started."""
    start = time.monotonic()
    ids = [stubs.tasks.RunTask(pb.NameRequest(name=name), timeout=30).id for name in tasks]
    while stubs.executions.ListExecutions(
            pb.ListExecutionsRequest(status=ACTIVE, limit=1), timeout=30).executions:
        time.sleep(0.2)
    elapsed = time.monotonic() - start
    wanted = set(ids)
    done: list[pb.Execution] = []
    before = 0
    while len(done) < len(ids):  # newest first, pages of 500
        page = stubs.executions.ListExecutions(
            pb.ListExecutionsRequest(limit=500, before_id=before), timeout=30)
        done += [e for e in page.executions if e.id in wanted]
        if not page.next_before_id:
            break
        before = page.next_before_id
    return elapsed, done


class Stubs:
    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.tasks = rpc.TaskServiceStub(self.channel)
        self.executions = rpc.ExecutionServiceStub(self.channel)


def measure(pid: int, address: str, rounds: int, tasks: list[str],
            report: Callable[[Sample], None]) -> list[Sample]:
    stubs = Stubs(address)
    samples = []
    for number in range(rounds + 1):  # round 0 copies everything; the rest are no-ops
        seconds, executions = run_round(stubs, tasks)
        rss, fds, threads = sample_process(pid)
        sample = Sample(
            number, seconds, rss, fds, threads,
            succeeded=sum(e.status == pb.EXECUTION_STATUS_SUCCEEDED for e in executions),
            copied=sum(e.counters.tags_copied for e in executions),
            skipped=sum(e.counters.tags_skipped for e in executions))
        report(sample)
        samples.append(sample)
    stubs.channel.close()
    return samples


def print_row(sample: Sample) -> None:
    print(f"{sample.round:>5} {sample.seconds:>8.1f} {sample.rss_kb / 1024:>9.1f} "
          f"{sample.fds:>5} {sample.threads:>7} {sample.succeeded:>9} {sample.copied:>7} "
          f"{sample.skipped:>7}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--images", type=int, default=5, help="distinct images per repository")
    parser.add_argument("--rounds", type=int, default=20, help="no-op rounds after the copy")
    parser.add_argument("--max-running", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="regsync-soak-") as tmp_dir:
        tmp = Path(tmp_dir)
        with RegistryServer("anonymous", workdir=tmp / "src") as src, \
                RegistryServer("anonymous", workdir=tmp / "dst") as dst:
            built = build_corpus(src, args.repos, args.tags, args.images)
            print(f"corpus: {args.repos} repos x {args.tags} tags ({args.images} images per "
                  f"repo) pushed in {built:.1f}s", flush=True)
            config = tmp / "soak.yaml"
            config.write_text(config_text(src, dst, args.repos))
            tasks = [f"app{i:03d}" for i in range(args.repos)]
            with daemon(tmp, config, args.max_running) as (pid, address):
                rss, fds, threads = sample_process(pid)
                print(f"daemon {pid} idle: RSS {rss / 1024:.1f} MiB, {fds} fds, "
                      f"{threads} threads", flush=True)
                print("round  seconds  RSS(MiB)   fds threads succeeded  copied skipped")
                samples = measure(pid, address, args.rounds, tasks, print_row)
    summarize(samples, args.repos * args.tags)


def summarize(samples: list[Sample], tags: int) -> None:
    noop = samples[1:]
    if not noop:
        return
    first, last = noop[0], noop[-1]
    print(f"no-op rounds {first.round}-{last.round}, last/first: "
          f"RSS {last.rss_kb / first.rss_kb:.3f}, fds {last.fds / first.fds:.3f}, "
          f"threads {last.threads / first.threads:.3f}; "
          f"RSS max-min {(max(s.rss_kb for s in noop) - min(s.rss_kb for s in noop)) / 1024:.1f}"
          f" MiB; mean round {sum(s.seconds for s in noop) / len(noop):.1f}s")
    clean = all(s.skipped == tags and s.copied == 0 for s in noop)
    print("every no-op round skipped every tag" if clean else "SOME NO-OP ROUND DID WORK")


if __name__ == "__main__":
    main()
