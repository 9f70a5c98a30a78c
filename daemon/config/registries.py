"""The `registries:` section: URLs normalised, credentials paired, CA files checked."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import stat
from urllib.parse import urlsplit

from ..settings import CA_FILE_UNREADABLE, RegistrySettings
from .fields import REGISTRY_NAME_MAX, read_bool, read_mapping, read_positive, read_text
from .problems import At, kind, shortened


def read_registries(value: object, at: At) -> dict[str, RegistrySettings]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        at.problem(f"expected a mapping of registry names to settings, got {kind(value)}")
        return {}
    result: dict[str, RegistrySettings] = {}
    for name, settings in value.items():
        if not isinstance(name, str) or not name:
            at.problem(f"registry name {name!r} must be a non-empty string")
            continue
        if len(name) > REGISTRY_NAME_MAX:  # not even in a label: it would fill every line
            at.problem(
                f"registry name {shortened(name)!r} is {len(name)} characters long; "
                f"the limit is {REGISTRY_NAME_MAX}"
            )
            continue
        registry_at = At(at.report, f'registries "{name}"')
        if not REGISTRY_NAME.fullmatch(name):
            registry_at.key("name").problem(
                f"{name!r} is not a valid registry name; use 1-{REGISTRY_NAME_MAX} characters "
                'from A-Z, a-z, 0-9, "-", "_" and "."'
            )
        result[name] = _registry(name, settings, registry_at)
    return result



# Registries ----------------------------------------------------------------------------------

_REGISTRY_KEYS = ("url", "username", "password", "insecure", "ca_file", "ratelimit")
REGISTRY_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HOSTNAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")


def _registry(name: str, value: object, at: At) -> RegistrySettings:
    fields = read_mapping(value, at, _REGISTRY_KEYS)
    if fields is None:
        return RegistrySettings(name, "https://invalid")
    before = at.count()
    # Empty counts as absent, so `${USER:-}` means "anonymous unless the variable is set".
    username = read_text(fields, "username", at) or None
    password = read_text(fields, "password", at) or None
    if at.count() == before and (username is None) != (password is None):
        missing, present = (
            ("password", "username") if password is None else ("username", "password")
        )
        at.key(missing).problem(f"is required when {present} is set (or remove {present})")
    ratelimit = read_mapping(fields.get("ratelimit"), at.key("ratelimit"), ("qps",)) or {}
    return RegistrySettings(
        name=name,
        url=_url(fields, at) or "https://invalid",
        username=username,
        password=password,
        insecure=read_bool(fields, "insecure", at, False),
        ca_file=_ca_file(fields, at),
        qps=read_positive(ratelimit, "qps", at.key("ratelimit")),
    )


def _url(fields: dict[str, object], at: At) -> str | None:
    """scheme://host[:port], lowercased; anything else a user may paste is refused with a hint."""
    text = read_text(fields, "url", at, required=True)
    if text is None:
        return None
    here = at.key("url")
    if "@" in text:  # checked first: nothing of a URL holding credentials may be echoed
        here.problem("must not contain credentials; use username and password")
        return None
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        here.problem(f"invalid URL: {exc}")
        return None
    host = parts.hostname or ""
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}" if host else ""
    if parts.scheme not in ("http", "https"):
        here.problem(f"must start with https:// or http://, got {shown or repr(text)}")
    elif not valid_host(host):
        here.problem(f"has no valid host name: {shown or repr(text)}")
    elif parts.query or parts.fragment:
        here.problem(f"must not have a query or fragment: {shown}")
    elif parts.path not in ("", "/"):
        hint = " (regsync adds /v2/ itself)" if parts.path.startswith("/v2") else ""
        here.problem(f"must not have a path, got {parts.path!r}{hint}")
    else:
        if host in ("docker.io", "index.docker.io"):
            host = "registry-1.docker.io"  # Docker Hub's API answers only there
        host = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    return None


def valid_host(host: str) -> bool:
    if ":" not in host:
        return _HOSTNAME.fullmatch(host) is not None
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _ca_file(fields: dict[str, object], at: At) -> str | None:
    """Absolute path of a readable PEM file; relative paths are relative to the config file.

    One answer for every way it can fail (missing, a directory, unreadable, not PEM) that quotes
    only what was written: an API client must not learn which paths exist on the daemon's
    machine (nor the daemon's working directory a relative path resolves against).
    """
    text = read_text(fields, "ca_file", at)
    if not text:
        return None
    path = os.path.normpath(os.path.join(at.report.base_dir, os.path.expanduser(text)))
    if not ca_file_usable(path):
        at.key("ca_file").problem(f"{shortened(text)!r} {CA_FILE_UNREADABLE}")
    return path


CA_FILE_MAX = 16 * 1024 * 1024  # far beyond any CA bundle (the system one is ~200 KiB)


def ca_file_usable(path: str) -> bool:
    """Whether `path` is a regular file of at most CA_FILE_MAX bytes holding PEM certificates.
    Opened non-blocking and checked on the open file, so a FIFO or a device never hangs it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read(CA_FILE_MAX + 1)
    except OSError:
        return False
    finally:
        os.close(fd)
    if len(data) > CA_FILE_MAX:
        return False
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii"))
    except (ssl.SSLError, ValueError):  # UnicodeDecodeError is a ValueError
        return False
    return True

