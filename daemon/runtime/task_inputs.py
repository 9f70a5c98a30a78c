"""What one task runs with: its rule and its two registries from the store, `${VAR}` read now.

A stored password is a template: `$$` stands for "$", and `${VAR}` (only in rows an older
version wrote from a config file) is read from the daemon's environment at the moment a registry
is used (a run, a plan, a connection test). Every value that comes in now is literal and stored
through `literal_template`, so nothing an API client sends can make the daemon read its
environment (and send what it finds to a host the client chose).
"""

from __future__ import annotations

from dataclasses import replace

from ..config import expand_env
from ..settings import RegistrySettings, SyncRule
from ..store.repo import Repo


def literal_template(password: str | None) -> str | None:
    """The stored form of a literal password: every "$" doubled, so `resolved` gives it back."""
    return password.replace("$", "$$") if password else password


def resolved(settings: RegistrySettings) -> RegistrySettings:
    """The settings with a `${VAR}` password replaced by the variable's value."""
    if not settings.password:
        return settings
    where = f"registry {settings.name!r}: password"
    return replace(settings, password=expand_env(settings.password, where=where))


def rule_registries(repo: Repo, task: str) -> tuple[SyncRule, dict[str, RegistrySettings]]:
    """`task`'s rule and the settings of the registries it names (runs in the DB thread)."""
    rule = repo.get_task(task).rule
    registries = {name: resolved(repo.get_registry(name).settings)
                  for name in (rule.source.registry, rule.target.registry)}
    return rule, registries
