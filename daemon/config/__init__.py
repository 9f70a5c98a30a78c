"""The YAML front door: a config file (or a document an API client sent) in, `settings` out.

Everything is validated up front and every problem is reported at once, one line each, naming the
file, the rule or registry, the dotted field and what is wrong: a user fixes the file in one pass
instead of one error per run. `${VAR}` is substituted after YAML parsing, in string values only,
so a password full of YAML-special characters is safe; secrets never appear in messages or reprs.

The format is the seed's (see configs/sync.example.yaml); extensions are optional keys
(`tags.semver`, `platforms`, `insecure`, `ca_file`) and `${VAR:-default}`.

    loader         load_config / parse_config / parse_applied, and validate_document: the one
                   dict-level validation the YAML loader and the API both call
    yamlload       YAML text -> plain data (duplicate keys, anchors refused)
    env            ${VAR} substitution
    fields         typed field readers and the per-field length limits
    registries     rules        notifications: the sections
    problems       ConfigProblems and where a problem sits (At)
"""

from __future__ import annotations

from ..settings import CA_FILE_UNREADABLE
from ..values.names import REPOSITORY_MAX
from .env import expand_env
from .fields import (
    APPLIED_BYTES_MAX,
    LIST_MAX,
    PATTERN_MAX,
    REGISTRY_NAME_MAX,
    RULE_NAME_MAX,
)
from .loader import SUPPORTED_VERSION, load_config, parse_applied, parse_config, validate_document
from .problems import ConfigProblems
from .registries import CA_FILE_MAX, ca_file_usable

__all__ = [
    "APPLIED_BYTES_MAX",
    "CA_FILE_MAX",
    "CA_FILE_UNREADABLE",
    "LIST_MAX",
    "PATTERN_MAX",
    "REGISTRY_NAME_MAX",
    "REPOSITORY_MAX",
    "RULE_NAME_MAX",
    "SUPPORTED_VERSION",
    "ConfigProblems",
    "ca_file_usable",
    "expand_env",
    "load_config",
    "parse_applied",
    "parse_config",
    "validate_document",
]
