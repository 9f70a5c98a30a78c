"""The same workload on one and on three daemons sharing a PostgreSQL store. Not a test.

    .venv/bin/python bench/cluster.py [--repos 12] [--tags 5] [--delay 0.02]

A corpus of `repos` x `tags` images in a local source registry, read through a proxy that holds
every request back `delay` seconds (a round trip to a distant registry: where a second host
helps; on loopback alone the registry and the daemons share this machine's cores). For one and
then three daemons (each `--max-running 2`, `global.concurrency 2`), on a fresh database and a
fresh target: one task per repository, all started through the first daemon's API; prints the
wall time until every execution ended, and how many each daemon ran.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc
from support.images import CorpusSpec, build_corpus
from support.postgres import PostgresCluster, postgres_cluster
from support.proxy import CountingProxy, Fault, ProxyRequest
from support.registry import RegistryServer, free_port

REGSYNCD = str(Path(sys.executable).parent / "regsyncd")
ACTIVE = (pb.EXECUTION_STATUS_QUEUED, pb.EXECUTION_STATUS_RUNNING)


def start(db: str, config: Path, log: Path) -> tuple[subprocess.Popen[bytes], Any, Any]:
    address = f"127.0.0.1:{free_port()}"
    with open(log, "ab") as out:
        proc = subprocess.Popen([REGSYNCD, "serve", "--db", db, "--listen", address,
                                 "--ui-port", "0", "--max-running", "2", "--config", str(config)],
                                stdout=out, stderr=out)
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=30)
    return proc, rpc.TaskServiceStub(channel), rpc.ExecutionServiceStub(channel)


def run(cluster: PostgresCluster, daemons: int, source: str, target: RegistryServer,
        repos: list[str], tmp: Path) -> tuple[float, dict[str, int]]:
    db = cluster.url(cluster.create_database())
    names = [repo.replace("/", "-") for repo in repos]
    config = tmp / f"sync-{daemons}.yaml"
    rules = "".join(f"  - {{name: {n}, source: {{registry: src, repository: {r}}}, target: "
                    f"{{registry: dst, repository: n{daemons}/{r}}}}}\n"
                    for n, r in zip(names, repos, strict=True))
    config.write_text(f'version: "1.0"\nglobal: {{concurrency: 2}}\nregistries:\n'
                      f"  src: {{url: {source}}}\n  dst: {{url: {target.url}}}\n"
                      f"sync_rules:\n{rules}")
    procs = [start(db, config, tmp / f"d{daemons}-{i}.log") for i in range(daemons)]
    try:
        _, tasks, executions = procs[0]
        started = time.perf_counter()
        runs = [tasks.RunTask(pb.NameRequest(name=name)) for name in names]
        while any(executions.GetExecution(pb.ExecutionRequest(id=r.id)).execution.status
                  in ACTIVE for r in runs):
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        ran: dict[str, int] = {}
        for r in runs:
            label = executions.GetExecution(pb.ExecutionRequest(id=r.id)).execution.daemon
            pid = re.search(r"pid (\d+)", label)
            ran[pid.group(1) if pid else label] = ran.get(pid.group(1) if pid else label, 0) + 1
        return elapsed, ran
    finally:
        for proc, _, _ in procs:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=12)
    parser.add_argument("--tags", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds per source request")
    args = parser.parse_args()

    def slow(request: ProxyRequest) -> Fault | None:
        return Fault.slow(args.delay) if args.delay > 0 else None

    with tempfile.TemporaryDirectory(prefix="regsync-bench-cluster-") as tmp_dir:
        tmp = Path(tmp_dir)
        spec = CorpusSpec(repos=args.repos, tags_per_repo=args.tags,
                          shared_layer_size=256 << 10, unique_layer_size=256 << 10)
        with RegistryServer("anonymous", workdir=tmp / "src") as src, \
                RegistryServer("anonymous", workdir=tmp / "dst") as dst, \
                CountingProxy(src, fault=slow) as proxy, postgres_cluster() as cluster:
            build_corpus(src, spec)
            print(f"{args.repos} repositories x {args.tags} tags, {args.delay * 1000:.0f} ms "
                  "per source request, --max-running 2 and concurrency 2 per daemon")
            for daemons in (1, 3):
                elapsed, ran = run(cluster, daemons, proxy.url, dst, spec.repo_names(), tmp)
                shares = ", ".join(str(n) for n in sorted(ran.values(), reverse=True))
                print(f"{daemons} daemon(s): {elapsed:6.1f} s  (executions per daemon: {shares})")


if __name__ == "__main__":
    main()
