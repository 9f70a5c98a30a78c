"""A responsiveness probe in its own process: times a cheap RPC against a daemon, over and over.

A daemon frozen by CPU work in its own process freezes every thread of that process too (Python's
`re` holds the GIL while it backtracks), so only another process can see how long a client waits.

    python -m support.probe ADDRESS   prints "ready", polls GetStatus until a line arrives on
                                      stdin, then prints the longest wait in seconds
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from regsync.proto.regsync.v1 import regsync_pb2 as pb
from regsync.proto.regsync.v1 import regsync_pb2_grpc as rpc


class Probe:
    """Start it (it is ready when `start` returns), do the hostile thing, then `stop()`."""

    def __init__(self, address: str) -> None:
        tests = str(Path(__file__).resolve().parent.parent)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "support.probe", address], cwd=tests,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def start(self) -> None:
        """Blocks until the probe's channel is connected and its first call answered."""
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        assert line.strip() == "ready", line

    def stop(self) -> float:
        """The longest wait the probe saw, in seconds."""
        out, _ = self._process.communicate("stop\n", timeout=120)
        return float(out.strip())


def _main(address: str) -> None:
    channel = grpc.insecure_channel(address)
    control = rpc.ControlServiceStub(channel)
    control.GetStatus(pb.StatusRequest(), timeout=30)
    stopped = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stopped.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    print("ready", flush=True)
    longest = 0.0
    while not stopped.is_set():
        start = time.monotonic()
        control.GetStatus(pb.StatusRequest(), timeout=120)
        longest = max(longest, time.monotonic() - start)
        time.sleep(0.05)
    print(f"{longest:.3f}", flush=True)


if __name__ == "__main__":
    _main(sys.argv[1])
