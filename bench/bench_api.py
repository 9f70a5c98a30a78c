"""The daemon's control plane under load: unary latency and Watch throughput during a full sync.

    .venv/bin/python bench/bench_api.py [--repos 8] [--tags 6] [--calls 2000]

Starts two local registries with a corpus, `regsyncd serve` as its own process, creates the
registries and one task per repository through the API, starts every task at once, and while
they copy: times `GetStats` and `ListTasks` calls back to back (p50/p99) and counts the events a
Watch (with logs) receives per second.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.images import CorpusSpec, build_corpus
from support.registry import RegistryServer, free_port

REGSYNCD = str(Path(sys.executable).parent / "regsyncd")
ACTIVE = (pb.EXECUTION_STATUS_QUEUED, pb.EXECUTION_STATUS_RUNNING)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=8)
    parser.add_argument("--tags", type=int, default=6)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="regsync-bench-api-") as tmp_dir:
        tmp = Path(tmp_dir)
        spec = CorpusSpec(repos=args.repos, tags_per_repo=args.tags,
                          shared_layer_size=4 << 20, unique_layer_size=1 << 20)
        with RegistryServer("anonymous", workdir=tmp / "src") as src, \
                RegistryServer("anonymous", workdir=tmp / "dst") as dst:
            build_corpus(src, spec)
            address = f"127.0.0.1:{free_port()}"
            daemon = subprocess.Popen(
                [REGSYNCD, "serve", "--db", str(tmp / "db.sqlite"), "--listen", address,
                 "--ui-port", "0", "--max-running", str(args.repos)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            try:
                measure(address, src, dst, spec.repo_names(), args.calls)
            finally:
                daemon.terminate()
                daemon.wait(30)


def measure(address: str, src: RegistryServer, dst: RegistryServer, repos: list[str],
            calls: int) -> None:
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    registries = rpc.RegistryServiceStub(channel)
    tasks = rpc.TaskServiceStub(channel)
    control = rpc.ControlServiceStub(channel)
    executions = rpc.ExecutionServiceStub(channel)
    registries.CreateRegistry(pb.RegistrySpec(name="src", url=src.url))
    registries.CreateRegistry(pb.RegistrySpec(name="dst", url=dst.url))
    names = [repo.replace("/", "-") for repo in repos]
    for name, repo in zip(names, repos, strict=True):
        tasks.CreateTask(pb.TaskSpec(name=name, source=pb.Endpoint(registry="src", repository=repo),
                                     target=pb.Endpoint(registry="dst", repository=repo)))

    idle = [timed(lambda: control.GetStats(pb.StatsRequest())) for _ in range(200)]
    events = 0
    watch = control.Watch(pb.WatchRequest(logs=True))

    def count_events() -> None:
        nonlocal events
        try:
            for _ in watch:
                events += 1
        except grpc.RpcError:
            pass  # cancelled at the end

    counter = threading.Thread(target=count_events, daemon=True)
    counter.start()
    started = time.perf_counter()
    runs = [tasks.RunTask(pb.NameRequest(name=name)) for name in names]
    busy: list[float] = []
    while len(busy) < calls and any(
        executions.GetExecution(pb.ExecutionRequest(id=r.id)).execution.status in ACTIVE
        for r in runs[:1]
    ):
        busy.append(timed(lambda: control.GetStats(pb.StatsRequest())))
        busy.append(timed(lambda: tasks.ListTasks(pb.ListTasksRequest())))
    for run in runs:
        while executions.GetExecution(pb.ExecutionRequest(id=run.id)).execution.status in ACTIVE:
            time.sleep(0.05)
    elapsed = time.perf_counter() - started
    watch.cancel()
    counter.join(5)

    print(f"unary, idle:        p50 {percentile(idle, .5):6.2f} ms  p99 {percentile(idle, .99):6.2f} ms"
          f"  ({len(idle)} GetStats)")
    if busy:
        print(f"unary, during sync: p50 {percentile(busy, .5):6.2f} ms  "
              f"p99 {percentile(busy, .99):6.2f} ms  ({len(busy)} GetStats/ListTasks)")
    print(f"watch: {events} events in {elapsed:.1f}s of sync = {events / elapsed:.0f} events/s; "
          f"mean call {statistics.mean(busy or idle):.2f} ms")


def timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
