"""The panel is a door too: who may come in, by which name, from which page, and to where.

Pure decisions first, then the ASGI middleware that applies them to every HTTP request and
websocket handshake (NiceGUI's socket.io endpoint included):

    request                                        answer
    Host not one of the panel's names              400 (DNS rebinding: attacker.example
                                                   resolving to 127.0.0.1 reaches a loopback
                                                   panel, so the name is what tells them apart)
    Origin present and not the panel's own         403 (a foreign page driving the panel's
                                                   socket or posting to it with the browser's
                                                   cookies); no Origin: a non-browser client
    anything else                                  the panel

The panel's names: loopback names always (localhost, 127.0.0.1, [::1]), the address it is bound
to when that is a specific one, and any given with --ui-allowed-host (--allowed-host standalone).
A panel bound beyond loopback must also have a login (`check_exposure`), and after login a
browser is sent only to a local path (`local_path`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from regsync.common.errors import SetupError

log = logging.getLogger("regsync.ui")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The host names (lowercase, no brackets, no port) the panel answers to."""

    names: frozenset[str]


def host_policy(bind_host: str, allowed: Iterable[str] = ()) -> HostPolicy:
    """Loopback names, the bound address unless it is a wildcard, and `allowed`.

    Raises:
        SetupError: an allowed name that is not a host name (a port or a URL, say).
    """
    names = set(LOOPBACK_NAMES)
    bound = bind_host.strip("[]").lower()
    if bound not in WILDCARDS:
        names.add(bound)
    for name in allowed:
        split = split_host(name)
        if split is None or split[1] is not None:
            raise SetupError(f"allowed host {name!r}: give a host name or address, no port "
                              "or scheme (e.g. panel.example.com)")
        names.add(split[0])
    return HostPolicy(frozenset(names))


def host_name(header: str) -> str | None:
    """The host of a `Host` header value ("Name:8080" -> "name", "[::1]:8080" -> "::1"), or
    None when it is not a plausible one."""
    split = split_host(header)
    return split[0] if split else None


def split_host(header: str) -> tuple[str, int | None] | None:
    """(host, port or None) of a `Host` header value, or None when it is not a plausible one.
    A bare IPv6 address (not valid in a Host header) is accepted for allowed-name options."""
    text = header.strip().lower()
    if not text or not text.isascii() or any(c in text for c in "/\\@?#% \t"):
        return None
    port = ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or ":" not in host or (rest and not rest.startswith(":")):
            return None  # brackets hold an IPv6 address and nothing else
        port = rest[1:]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host = text
    if ":" in host:
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    elif "[" in host or "]" in host:
        return None
    host = host.rstrip(".")
    if not host or (port and not (port.isdigit() and int(port) < 65536)) or (
            text.endswith(":")):
        return None
    return host, int(port) if port else None


def host_allowed(header: str | None, policy: HostPolicy) -> bool:
    name = host_name(header) if header is not None else None
    return name is not None and name in policy.names


def origin_allowed(origin: str | None, host_header: str | None, policy: HostPolicy) -> bool:
    """A request without Origin comes from no foreign page (browsers send Origin on every
    websocket handshake and cross-site request); with one, it must be this very panel: one of
    its names, and the host and port the request itself was sent to."""
    if origin is None:
        return True
    try:
        parts = urlsplit(origin.strip())
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(parts.scheme)
    source = split_host(parts.netloc) if parts.netloc else None
    host = split_host(host_header) if host_header is not None else None
    if default is None or source is None or host is None or parts.path or parts.query:
        return False
    return host[0] in policy.names and (source[0], source[1] or default) == (
        host[0], host[1] or default)


def is_loopback(host: str) -> bool:
    """A loopback address or `localhost`; any other name may resolve anywhere."""
    text = host.strip("[]")
    try:
        return text == "localhost" or ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, *, login_required: bool, how: str) -> None:
    """Refuse a panel beyond loopback without a login: whoever reaches it controls regsyncd.

    Raises:
        SetupError: saying `how` to get a login (or to stay on loopback).
    """
    if login_required or is_loopback(host):
        return
    raise SetupError(f"web panel on {host}: beyond loopback it needs a login, and anyone who "
                      f"reaches it would control regsyncd; {how}")


class _Current:
    """The policy of the panel this process serves (NiceGUI's app, and so its middleware stack,
    is global: a second panel in the process replaces the policy, not the middleware)."""

    policy: HostPolicy | None = None


def install(policy: HostPolicy) -> None:
    _Current.policy = policy


class PanelGuard:
    """ASGI middleware: the table at the top of this module, for HTTP and websockets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = _Current.policy
        if scope["type"] not in ("http", "websocket") or policy is None:
            await self.app(scope, receive, send)
            return
        hosts, origins = _headers(scope, b"host"), _headers(scope, b"origin")
        host = hosts[0] if len(hosts) == 1 else None  # two: which one a proxy used, who knows
        if not host_allowed(host, policy):
            await _refuse(scope, receive, send, 400, "unknown host name for this panel")
        elif len(origins) > 1 or not origin_allowed(next(iter(origins), None), host, policy):
            await _refuse(scope, receive, send, 403, "requests from other sites are refused")
        else:
            await self.app(scope, receive, send)


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [bytes(v).decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    log.warning("web panel: refused %s %s (%d: %s)", scope["type"],
                ascii(scope.get("path", ""))[:200], status, text)
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})  # the server answers 403
        return
    body = f"{status} {text}\n".encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
