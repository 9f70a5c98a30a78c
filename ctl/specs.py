"""From command-line values to the protobuf specs the daemon takes: pure, and tested as such.

`add` builds a spec from scratch; `edit` starts from the daemon's current value and changes only
the flags that were given (argparse leaves the others `None`), so an edit never resets a field
the user did not mention. Validation of meaning (regex, cron, registry exists) is the daemon's:
it answers INVALID_ARGUMENT naming the field, and one place decides what is valid.
"""

from __future__ import annotations

import argparse
from collections.abc import MutableSequence, Sequence

from regsync.proto.regsync.v1 import regsync_pb2 as pb

# Lists a `tasks edit --clear FIELD` empties (scalars are cleared by passing "" or 0).
CLEARABLE = ("include", "exclude", "semver", "latest", "arch", "platform", "cron", "exclude-repo",
             "artifact-type")


def endpoint(text: str) -> pb.Endpoint:
    """`REG/REPO` -> Endpoint: the registry is the part before the first "/".

    Raises:
        argparse.ArgumentTypeError: no "/" or an empty side (argparse reports it as usage).
    """
    registry, slash, repository = text.partition("/")
    if not slash or not registry or not repository.strip("/"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not REGISTRY/REPOSITORY (e.g. dockerhub/library/nginx)"
        )
    return pb.Endpoint(registry=registry, repository=repository.strip("/"))


def status(text: str) -> pb.ExecutionStatus.ValueType:
    """"failed" -> EXECUTION_STATUS_FAILED."""
    try:
        return pb.ExecutionStatus.Value("EXECUTION_STATUS_" + text.upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown status {text!r} (one of: {', '.join(STATUS_WORDS)})"
        ) from None


STATUS_WORDS = ("queued", "running", "succeeded", "failed", "stopped", "interrupted")


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def prune_max(text: str) -> str:
    """`--prune-max`: a count ("10") or a percentage of the target's tags ("25%")."""
    number = text.removesuffix("%")
    if not number.isdigit() or (text.endswith("%") and int(number) > 100):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count or a percentage up to 100% (e.g. 10 or 25%)")
    return text


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value


def new_registry(args: argparse.Namespace, password: str | None) -> pb.RegistrySpec:
    spec = pb.RegistrySpec(
        name=args.name, url=args.url, username=args.username or "",
        insecure=bool(args.insecure), ca_file=args.ca_file or "", qps=args.qps or 0.0,
    )
    if password is not None:
        spec.password = password
    return spec


def edited_registry(
    current: pb.Registry, args: argparse.Namespace, password: str | None
) -> pb.RegistrySpec:
    """The current settings with the given flags applied; the password is absent (kept) unless
    a new one was read."""
    spec = pb.RegistrySpec(
        name=current.name, url=current.url, username=current.username,
        insecure=current.insecure, ca_file=current.ca_file, qps=current.qps,
    )
    for flag in ("url", "username", "insecure", "ca_file", "qps"):
        value = getattr(args, flag)
        if value is not None:
            setattr(spec, flag, value)
    if password is not None:
        spec.password = password
    return spec


def new_task(args: argparse.Namespace) -> pb.TaskSpec:
    spec = pb.TaskSpec(name=args.name, enabled=not args.disabled)
    spec.source.CopyFrom(args.source)
    spec.target.CopyFrom(args.target)
    spec.tags.SetInParent()
    return _apply_task_flags(spec, args)


def edited_task(current: pb.TaskSpec, args: argparse.Namespace) -> pb.TaskSpec:
    spec = pb.TaskSpec()
    spec.CopyFrom(current)
    for field in args.clear or ():
        _clear(spec, field)
    if args.source is not None:
        kept = list(spec.source.exclude)  # a new source keeps the excludes unless told
        spec.source.CopyFrom(args.source)
        spec.source.exclude.extend(kept)
    if args.target is not None:
        spec.target.CopyFrom(args.target)
    return _apply_task_flags(spec, args)


def _apply_task_flags(spec: pb.TaskSpec, args: argparse.Namespace) -> pb.TaskSpec:
    """Lists given on the command line replace the stored list; scalars replace theirs."""
    _replace(spec.tags.include, args.include)
    _replace(spec.tags.exclude, args.exclude)
    _replace(spec.source.exclude, args.exclude_repo)
    _replace(spec.architectures, args.arch)
    _replace(spec.platforms, args.platform)
    if args.semver is not None:
        spec.tags.semver = args.semver
    if args.latest is not None:
        spec.tags.latest = args.latest
    if args.cron is not None:
        spec.cron_expression = args.cron
    if args.prune is not None:
        spec.prune = args.prune
    if args.prune_max is not None:
        spec.prune_max = args.prune_max
    _replace(spec.referrer_artifact_types, args.artifact_type)
    if args.referrers is not None:
        spec.referrers = args.referrers
    return spec


def _replace(target: MutableSequence[str], values: Sequence[str] | None) -> None:
    if values is not None:
        del target[:]
        target.extend(values)


def _clear(spec: pb.TaskSpec, field: str) -> None:
    if field == "include":
        del spec.tags.include[:]
    elif field == "exclude":
        del spec.tags.exclude[:]
    elif field == "semver":
        spec.tags.semver = ""
    elif field == "latest":
        spec.tags.latest = 0
    elif field == "arch":
        del spec.architectures[:]
    elif field == "platform":
        del spec.platforms[:]
    elif field == "cron":
        spec.cron_expression = ""
    elif field == "exclude-repo":
        del spec.source.exclude[:]
    elif field == "artifact-type":
        del spec.referrer_artifact_types[:]
