"""A private network of Linux network namespaces: a bridge and one namespace per host.

Each host is joined to the bridge by a veth pair created directly in the two namespaces (the
root namespace is never touched) and capped on its egress with ``tc tbf``. No namespace has a
default route and IPv6 is off in all of them: no packet can leave the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

from harness.procs import in_ns, reap_any, sh


@dataclass(frozen=True)
class Host:
    """Where a process runs: a namespace (None: this one) and the address it binds."""

    role: str
    ns: str | None
    ip: str
    dev: str = "lo"  # its interface, inside ns
    cap_mbit: float | None = None


LOOPBACK = Host("loopback", None, "127.0.0.1")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Topology:
    """A bridge namespace and one namespace per host, each with a capped veth into the bridge."""

    def __init__(self, prefix: str, subnet: str, mtu: int, delay_ms: float = 0) -> None:
        self.prefix = prefix  # every namespace's name starts with it
        self.subnet = subnet  # first three octets, e.g. "10.213.0"
        self.mtu = mtu
        self.delay_ms = delay_ms  # netem delay on every host's egress (0: none)
        self.bridge = f"{prefix}br"
        self.created: list[str] = []

    def _add_ns(self, ns: str) -> None:
        sh(["ip", "netns", "add", ns])
        self.created.append(ns)
        # No IPv6 at all (no link-local addresses, no multicast listener reports).
        sysctls = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        sh(in_ns(ns, ["sysctl", "-qw", *sysctls]))
        sh(in_ns(ns, ["ip", "link", "set", "lo", "up"]))

    def build_bridge(self) -> None:
        self._add_ns(self.bridge)
        sh(in_ns(self.bridge, ["ip", "link", "add", "br0", "type", "bridge"]))
        sh(in_ns(self.bridge, ["ip", "link", "set", "br0", "up"]))

    def add_host(self, role: str, octet: int, cap_mbit: float) -> Host:
        ns = f"{self.prefix}{role}"
        self._add_ns(ns)
        port = f"p{octet}"
        # Both ends are created directly in their namespaces: nothing touches the root one.
        sh(
            [
                *("ip", "link", "add", "eth0", "netns", ns, "mtu", str(self.mtu), "type", "veth"),
                *("peer", "name", port, "netns", self.bridge, "mtu", str(self.mtu)),
            ]
        )
        sh(in_ns(self.bridge, ["ip", "link", "set", port, "master", "br0"]))
        sh(in_ns(self.bridge, ["ip", "link", "set", port, "up"]))
        ip = f"{self.subnet}.{octet}"
        sh(in_ns(ns, ["ip", "addr", "add", f"{ip}/24", "dev", "eth0"]))
        sh(in_ns(ns, ["ip", "link", "set", "eth0", "up"]))
        tbf = ["rate", f"{cap_mbit:g}mbit", "burst", "32kbit", "latency", "50ms"]
        qdisc = ["tc", "qdisc", "add", "dev", "eth0"]
        if self.delay_ms:
            # netem first (the delay), the cap as its child: a path of that latency and rate.
            netem = ["netem", "delay", f"{self.delay_ms:g}ms", "limit", "100000"]
            sh(in_ns(ns, [*qdisc, "root", "handle", "1:", *netem]))
            sh(in_ns(ns, [*qdisc, "parent", "1:", "handle", "2:", "tbf", *tbf]))
        else:
            sh(in_ns(ns, [*qdisc, "root", "tbf", *tbf]))
        routes = sh(in_ns(ns, ["ip", "route", "show", "default"])).strip()
        if routes:
            raise RuntimeError(f"{ns} has a default route: {routes}")
        return Host(role, ns, ip, "eth0", cap_mbit)

    def destroy(self) -> list[str]:
        """Kill whatever still runs inside the namespaces, delete them; problems found."""
        problems: list[str] = []
        for ns in reversed(self.created):
            kill_inside(ns)
            try:
                sh(["ip", "netns", "del", ns], 10)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                problems.append(f"{ns}: {exc}")
        self.created.clear()
        return problems


def tx_bytes(host: Host) -> int:
    """What ``host``'s interface has sent so far, headers included."""
    path = f"/sys/class/net/{host.dev}/statistics/tx_bytes"
    return int(sh(in_ns(host.ns, ["cat", path])).strip())


def kill_inside(ns: str) -> None:
    """SIGKILL every process inside ``ns`` until none is left (bounded: about 5 s)."""
    for _ in range(50):
        try:
            pids = [int(p) for p in sh(["ip", "netns", "pids", ns], 10).split()]
        except (RuntimeError, subprocess.TimeoutExpired, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        reap_any()
        time.sleep(0.1)


def namespaces(prefix: str) -> list[str]:
    """The namespaces whose names start with ``prefix``."""
    out = sh(["ip", "netns", "list"], 10, check=False)
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]


def remove_namespaces(prefix: str) -> None:
    """Kill what runs inside every namespace named ``prefix*`` and delete it."""
    for ns in namespaces(prefix):
        kill_inside(ns)
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            sh(["ip", "netns", "del", ns], 10)
