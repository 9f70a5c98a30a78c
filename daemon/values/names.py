"""Repository names by distribution's grammar: what a catalog name or a rule's repository must be.

On the ground floor because the config front door, the repository globs and the registry client
all check names the same way.
"""

from __future__ import annotations

import re

REPOSITORY_MAX = 255  # distribution refuses longer names (reference.NameTotalLengthMax)
COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


def is_repository(text: str) -> bool:
    """Whether `text` is a repository name by distribution's grammar (lowercase components
    joined by `/`, at most 255 characters): what a catalog name must be before any use."""
    return (
        0 < len(text) <= REPOSITORY_MAX
        and text.isascii()
        and all(COMPONENT.fullmatch(component) for component in text.split("/"))
    )
