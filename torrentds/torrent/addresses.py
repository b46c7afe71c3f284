"""HOST:PORT values for peers and listen addresses: checked, and names resolved.

libtorrent dials and binds IP addresses only, so names are resolved here;
standard library only, so the config and the CLI can check addresses without
loading libtorrent.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

from torrentds.errors import UsageError


def split_host_port(text: str, *, port_zero: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); UsageError naming ``text``.

    Only the form is checked here; ``resolve_host`` turns a name into an IP.
    """
    host, sep, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    lowest = 0 if port_zero else 1
    # isascii: str.isdigit also accepts digits like "²", which int() refuses.
    if not (sep and host and port.isascii() and port.isdigit() and len(port) <= 5):
        raise UsageError(text, "expected HOST:PORT, e.g. 10.0.0.5:6881 or [::1]:6881")
    if not lowest <= int(port) <= 65535:
        raise UsageError(text, f"port must be {lowest}-65535")
    if bracketed and not _is_ip(host, 6):
        raise UsageError(text, "only an IPv6 address goes in brackets")
    if any(c.isspace() or c in "\0,[]/" for c in host):
        raise UsageError(text, "not a host name or IP address")
    if ":" in host and not bracketed:
        raise UsageError(text, "an IPv6 address needs brackets: [ADDRESS]:PORT")
    if not bracketed and not _is_ip(host):
        try:
            host.encode("idna")  # what getaddrinfo does first; a bad name asks no DNS
        except UnicodeError as exc:
            raise UsageError(text, "not a host name or IP address") from exc
    return host, int(port)


def _is_ip(host: str, version: int | None = None) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return version is None or ip.version == version


def resolve_host(host: str, subject: str) -> str:
    """An IP for ``host``: itself if it is one, else its first IPv4 address, or
    its first IPv6 address when it has none (listeners default to 0.0.0.0)."""
    if _is_ip(host):
        return host
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(subject, f"cannot resolve host {host!r}: {exc.strerror}") from exc
    except (OSError, ValueError) as exc:  # a label over 63 bytes: UnicodeError
        raise UsageError(subject, f"cannot resolve host {host!r}: {exc}") from exc
    addresses = [str(info[4][0]) for info in infos if info[0] == socket.AF_INET]
    addresses += [str(info[4][0]) for info in infos if info[0] == socket.AF_INET6]
    if not addresses:
        raise UsageError(subject, f"host {host!r} has no IPv4 or IPv6 address")
    return addresses[0]


def _resolve_peer(text: str) -> tuple[str, int]:
    host, port = split_host_port(text)
    return resolve_host(host, text), port


def listen_interface(text: str) -> tuple[str, int]:
    """A ``--listen`` value in libtorrent's ``listen_interfaces`` form, and its port.

    libtorrent takes an IP or a network device there; a host name such as
    ``localhost`` would be taken for a device that does not exist, and nothing
    would listen. So a name is resolved (a device name is kept as it is).
    """
    host, port = split_host_port(text, port_zero=True)
    if not _is_ip(host) and host not in {name for _, name in socket.if_nameindex()}:
        host = resolve_host(host, text)
    return (f"[{host}]" if ":" in host else host) + f":{port}", port


# Host names of peers resolved so far: value -> (when, (IP, port)). Peers are
# dialled again every 10 s on the job's thread, which must not wait on DNS.
_RESOLVED: dict[str, tuple[float, tuple[str, int]]] = {}
_REFRESHING: set[str] = set()
_RESOLVED_LOCK = threading.Lock()
RESOLVE_TTL = 60.0


def peer_address(host_port: str) -> tuple[str, int]:
    """The (IP, port) to dial for a ``--peer`` value; UsageError naming it.

    A name is resolved once (UsageError if it cannot be), then again in the
    background at most every ``RESOLVE_TTL`` seconds; the last address that
    resolved is kept while DNS fails, so a redial never raises.
    """
    host, port = split_host_port(host_port)
    if _is_ip(host):
        return host, port
    now = time.monotonic()
    with _RESOLVED_LOCK:
        known = _RESOLVED.get(host_port)
        stale = known is not None and now - known[0] > RESOLVE_TTL
        if stale and host_port not in _REFRESHING:
            _REFRESHING.add(host_port)
            threading.Thread(target=_refresh, args=(host_port,), daemon=True).start()
    if known is not None:
        return known[1]
    address = _resolve_peer(host_port)
    with _RESOLVED_LOCK:
        _RESOLVED[host_port] = (now, address)
    return address


def _refresh(host_port: str) -> None:
    try:
        address: tuple[str, int] | None = _resolve_peer(host_port)
    except UsageError:
        address = None  # DNS failing: keep the address that worked
    with _RESOLVED_LOCK:
        _REFRESHING.discard(host_port)
        if address is not None:
            _RESOLVED[host_port] = (time.monotonic(), address)
