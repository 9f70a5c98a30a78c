"""Generate the gRPC stubs, and act as the in-tree PEP 517 backend that does so before every build.

As a script: `python build.py` regenerates proto/**/*_pb2*.py(i) in place (for development).
As a backend (`build-backend = "build"` in pyproject.toml): every hook of setuptools.build_meta is
re-exported; the ones that build regenerate the stubs first, so `pip install .` from a fresh
clone works without generated files in git.

The include path is virtual (`-Iregsync/proto=proto`) so the generated modules import each other
as `regsync.proto.regsync.v1...`, which is where setuptools installs them.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from setuptools import build_meta as _orig
from setuptools.build_meta import *

ROOT = Path(__file__).resolve().parent
PROTO = ROOT / "proto"


def generate_stubs() -> list[Path]:
    """Compile every .proto under proto/ into *_pb2.py, *_pb2_grpc.py and typed .pyi beside it."""
    from grpc_tools import protoc  # type: ignore[import-untyped]  # only the build env has it

    sources = sorted(PROTO.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        args = [
            "grpc_tools.protoc",
            "-Iregsync/proto=proto",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
        ]
        plugins = {name: _script(name) for name in ("protoc-gen-mypy", "protoc-gen-mypy_grpc")}
        if all(plugins.values()):  # typed stubs when mypy-protobuf is there (it is at build time)
            args += [f"--plugin={name}={path}" for name, path in plugins.items()]
            args += [f"--mypy_out={out}", f"--mypy_grpc_out={out}"]
        args += [f"regsync/proto/{src.relative_to(PROTO).as_posix()}" for src in sources]
        # protoc resolves the virtual path against the working directory
        previous = Path.cwd()
        try:
            os.chdir(ROOT)
            code = protoc.main(args)
        finally:
            os.chdir(previous)
        if code != 0:
            raise RuntimeError(f"protoc failed with exit code {code}")
        written = []
        for path in (out / "regsync" / "proto").rglob("*"):
            if path.is_file():
                dest = PROTO / path.relative_to(out / "regsync" / "proto")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                written.append(dest)
    return written


def _script(name: str) -> str | None:
    """A console script of this interpreter's environment (PATH may not include it)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    generate_stubs()
    return str(_orig.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    generate_stubs()
    return str(_orig.build_editable(wheel_directory, config_settings, metadata_directory))


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    return str(_orig.build_sdist(sdist_directory, config_settings))


if __name__ == "__main__":
    for written in generate_stubs():
        print(written.relative_to(ROOT), file=sys.stderr)
