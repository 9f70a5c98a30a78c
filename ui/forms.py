"""Form values <-> API messages, kept pure so the rules about passwords and lists are tested.

A registry form never receives the stored password (the API never sends it): its password field
starts empty, and on update an empty field means "keep" while "remove password" sends an empty
one. Lists (tag patterns, platforms) are typed one per line or separated by commas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from regsync.proto.regsync.v1 import regsync_pb2 as pb

_SEPARATORS = re.compile(r"[\n,]")
PREVIEW_NAME = "preview"  # PreviewTags needs a valid task name even before the user picks one


def split_list(text: str) -> tuple[str, ...]:
    """'a, b\\nc' -> ('a', 'b', 'c'); blanks dropped."""
    return tuple(item.strip() for item in _SEPARATORS.split(text) if item.strip())


def join_list(items: tuple[str, ...] | list[str]) -> str:
    return ", ".join(items)


@dataclass(frozen=True)
class RegistryForm:
    """What the registry dialog holds."""

    name: str = ""
    url: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    clear_password: bool = False
    insecure: bool = False
    ca_file: str = ""
    qps: float = 0.0

    def to_spec(self) -> pb.RegistrySpec:
        spec = pb.RegistrySpec(
            name=self.name.strip(), url=self.url.strip(), username=self.username.strip(),
            insecure=self.insecure, ca_file=self.ca_file.strip(), qps=max(0.0, self.qps),
        )
        if self.clear_password:
            spec.password = ""
        elif self.password:
            spec.password = self.password
        return spec


def registry_form(registry: pb.Registry) -> RegistryForm:
    """The form for editing a stored registry (password empty: it is write-only)."""
    return RegistryForm(name=registry.name, url=registry.url, username=registry.username,
                        insecure=registry.insecure, ca_file=registry.ca_file, qps=registry.qps)


@dataclass(frozen=True)
class TaskForm:
    """What the task wizard holds."""

    name: str = ""
    source_registry: str = ""
    source_repository: str = ""
    target_registry: str = ""
    target_repository: str = ""
    include: str = ""
    exclude: str = ""
    semver: str = ""
    latest: int = 0
    architectures: str = ""
    platforms: str = ""
    cron: str = ""
    enabled: bool = True
    prune: bool = False
    prune_max: str = ""  # "" = the daemon's default, 50% of the target's tags
    referrers: bool = True
    artifact_types: str = ""  # referrers of these artifact types only; empty = all
    #: not edited by the wizard, kept as stored: an edit must not reset it
    source_exclude: tuple[str, ...] = ()

    def to_spec(self) -> pb.TaskSpec:
        return pb.TaskSpec(
            name=self.name.strip(),
            source=pb.Endpoint(registry=self.source_registry,
                               repository=self.source_repository.strip(),
                               exclude=list(self.source_exclude)),
            target=pb.Endpoint(registry=self.target_registry,
                               repository=self.target_repository.strip()),
            tags=self.tag_filter(),
            architectures=list(split_list(self.architectures)),
            platforms=list(split_list(self.platforms)),
            enabled=self.enabled,
            cron_expression=" ".join(self.cron.split()),
            referrers=self.referrers,
            prune=self.prune,
            prune_max=self.prune_max.strip(),
            referrer_artifact_types=list(split_list(self.artifact_types)),
        )

    def tag_filter(self) -> pb.TagFilter:
        return pb.TagFilter(include=list(split_list(self.include)),
                            exclude=list(split_list(self.exclude)),
                            semver=self.semver.strip(), latest=max(0, int(self.latest)))

    def preview_spec(self) -> pb.TaskSpec:
        """A spec PreviewTags accepts while the wizard is half filled: the source and filters
        are what matter; a missing name or target is borrowed."""
        spec = self.to_spec()
        if not spec.name:
            spec.name = PREVIEW_NAME
        if not spec.target.registry:
            spec.target.registry = spec.source.registry
        if not spec.target.repository:
            spec.target.repository = spec.source.repository
        if spec.target == spec.source:  # the daemon refuses a task copying onto itself
            repository = spec.source.repository  # a glob's target keeps its wildcards whole
            spec.target.repository = (f"{PREVIEW_NAME}/{repository}" if "*" in repository
                                      else f"{repository}-{PREVIEW_NAME}")
        return spec

    def source_key(self) -> tuple[str, str]:
        """What the cached source tag list depends on."""
        return (self.source_registry, self.source_repository.strip())


def task_form(task: pb.Task) -> TaskForm:
    """The wizard's values for editing a stored task."""
    spec = task.spec
    return TaskForm(
        name=spec.name,
        source_registry=spec.source.registry, source_repository=spec.source.repository,
        target_registry=spec.target.registry, target_repository=spec.target.repository,
        include="\n".join(spec.tags.include), exclude="\n".join(spec.tags.exclude),
        semver=spec.tags.semver, latest=spec.tags.latest,
        architectures=join_list(list(spec.architectures)),
        platforms=join_list(list(spec.platforms)),
        cron=spec.cron_expression, enabled=spec.enabled,
        source_exclude=tuple(spec.source.exclude),
        referrers=spec.referrers if spec.HasField("referrers") else True,
        prune=spec.prune, prune_max=spec.prune_max,
        artifact_types=join_list(list(spec.referrer_artifact_types)),
    )
