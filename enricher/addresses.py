"""Which addresses a fetch may reach, checked on the address each connection is actually opened to.

``GuardedTransport`` is httpx's own transport over a connection pool whose network backend resolves a
host once, refuses it when any answer is private, loopback, link-local (...) and connects to exactly the
address it checked. The URL keeps its host name, so the Host header, TLS SNI and certificate checks are
those of the name: a DNS answer that changes between a check and the connect cannot slip through, for
HTTP and HTTPS alike.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

import httpcore
import httpx

from .config import Config
from .errors import BlockedAddressError
from .quickack import quick_ack

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]  # host, port -> addresses as text
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)  # httpx's defaults


def address_kind(address: IPAddress) -> str | None:
    """Return why an address may not be fetched (``loopback``, ``private`` ...), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):  # most telling first
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "non-global"


def _addresses(infos: Iterable[tuple]) -> list[str]:
    return list(dict.fromkeys(info[4][0] for info in infos))


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve HOST through the system's resolver; socket.gaierror when it cannot."""
    return _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


def literal_addresses(host: str) -> list[str]:
    """Return the address a host written as an IP address stands for (also ``2130706433``, ``0x7f000001``
    and ``127.1``, which the C library reads as IPv4), or [] for a host name. No DNS query is made."""
    try:
        return _addresses(socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST))
    except (socket.gaierror, UnicodeError, ValueError):
        return []


class AddressGuard:
    """The address policy of one configuration: private addresses are refused unless ``allow_private`` is
    on or the host is listed in ``allowed_hosts``."""

    def __init__(self, config: Config, resolve: Resolver = system_resolver):
        self._allow_private = config.allow_private
        self._allowed_hosts = {host.lower() for host in config.allowed_hosts}
        self._resolve = resolve

    def allows_any_address(self, host: str) -> bool:
        """Whether HOST may resolve to any address, private ones included."""
        return self._allow_private or host.lower() in self._allowed_hosts

    def check(self, host: str, addresses: Iterable[str], where: str | None = None) -> None:
        """Raise BlockedAddressError (naming WHERE) when HOST may not reach one of ADDRESSES."""
        if self.allows_any_address(host):
            return
        for text in addresses:
            address = ipaddress.ip_address(text.split("%")[0])
            kind = address_kind(address)
            if kind:
                raise BlockedAddressError(
                    f"host {host} resolves to {address}, a {kind} address; allow it with allow_private or allowed_hosts",
                    where=where,
                )

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve HOST once and check every answer; httpcore.ConnectError when it does not resolve."""
        try:
            addresses = self._resolve(host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve host {host}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve host {host}: no address")
        self.check(host, addresses)
        return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's blocking backend, connecting only to addresses the guard resolved and checked, over
    streams that acknowledge at once (``quickack``)."""

    def __init__(self, guard: AddressGuard):
        self._guard = guard
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable | None = None) -> httpcore.NetworkStream:
        """Connect to the first checked address of HOST that answers."""
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in self._guard.resolve(host, port):
            try:
                return quick_ack(self._sockets.connect_tcp(address, port, timeout, local_address, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Iterable | None = None):
        """Refuse: a fetch never goes through a local socket."""
        raise httpcore.ConnectError(f"unix sockets are not fetched: {path}")

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's HTTP transport, every new connection of which GUARD resolves and checks."""

    def __init__(self, guard: AddressGuard):
        super().__init__(trust_env=False)
        # httpx takes no network backend, so its pool is replaced by one built the same way with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=POOL_LIMITS.max_connections,
            max_keepalive_connections=POOL_LIMITS.max_keepalive_connections,
            keepalive_expiry=POOL_LIMITS.keepalive_expiry,
            network_backend=GuardedBackend(guard),
        )
