"""The sidecar's config file (TOML): session, API and one table per dataset.

See ``deploy/torrentds.toml`` for a commented example. Every problem is a
``ConfigError`` naming the file and the key.
"""

from __future__ import annotations

import math
import os
import reprlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torrentds.errors import ConfigError, UsageError
from torrentds.options import GetOptions, SessionOptions, ordering_of
from torrentds.torrent.addresses import listen_interface, split_host_port
from torrentds.units import parse_size

DEFAULT_API = "127.0.0.1:8700"
TOKEN_ENV = "TORRENTDS_API_TOKEN"


@dataclass(frozen=True)
class SidecarConfig:
    session: SessionOptions = field(default_factory=SessionOptions)
    api: str = DEFAULT_API
    api_token: str | None = None
    datasets: tuple[GetOptions, ...] = ()
    path: str = ""
    # Folders a dataset added through the API may go to (empty: see ``data_roots``).
    data_root: tuple[Path, ...] = ()


_SESSION_KEYS = {"listen", "dht", "lsd", "upnp", "utp", "max_upload", "max_download"}
_API_KEYS = {"listen", "token", "data_root"}
_DATASET_KEYS = {
    "source",
    "dir",
    "seed_hours",
    "seed_ratio",
    "rank",
    "world_size",
    "only_mine",
    "window",
    "slice",
    "peers",
    "web_seeds",
    "trackers",
    "no_default_trackers",
    "timeout",
}


def load(path: Path) -> SidecarConfig:
    """Read and check ``path``."""
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(path, "no such config file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, f"not valid TOML: {exc}") from exc
    except RecursionError as exc:  # tomllib recurses once per level of nesting
        raise ConfigError(path, "not valid TOML: nested too deeply") from exc
    except ValueError as exc:  # Python's limit on an integer's digits
        raise ConfigError(path, f"not valid TOML: {_first_line(exc)}") from exc
    return parse(doc, str(path))


def parse(doc: dict[str, Any], where: str) -> SidecarConfig:
    unknown = set(doc) - {"session", "api", "dataset"}
    if unknown:
        raise ConfigError(where, f"unknown table {_show(sorted(unknown)[0])}")
    session = _table(doc, "session", _SESSION_KEYS, where)
    api = _table(doc, "api", _API_KEYS, where)
    raw_sets = doc.get("dataset", [])
    if not isinstance(raw_sets, list):
        raise ConfigError(where, "[[dataset]] must be an array of tables")
    opts = SessionOptions(
        listen=_listen(session, where),
        dht=_get(session, "dht", bool, False, where, "session"),
        lsd=_get(session, "lsd", bool, False, where, "session"),
        upnp=_get(session, "upnp", bool, False, where, "session"),
        utp=_get(session, "utp", bool, False, where, "session"),
        max_upload=_size(session, "max_upload", where),
        max_download=_size(session, "max_download", where),
    )
    token = _get(api, "token", str, "", where, "api") or os.environ.get(TOKEN_ENV) or None
    datasets = tuple(_dataset(raw, i, where) for i, raw in enumerate(raw_sets))
    seen: set[tuple[str, Path]] = set()
    for ds in datasets:
        key = (ds.source, ds.directory)
        if key in seen:
            raise ConfigError(where, f"dataset {ds.source!r} in {ds.directory} is listed twice")
        seen.add(key)
    return SidecarConfig(
        session=opts,
        api=_get(api, "listen", str, DEFAULT_API, where, "api"),
        api_token=token,
        datasets=datasets,
        path=where,
        data_root=_roots(api, where),
    )


def parse_dataset(raw: Any, where: str) -> GetOptions:
    """One dataset given as a mapping (an HTTP request's body), checked like the file's."""
    return _dataset(raw, None, where)


def data_roots(conf: SidecarConfig) -> list[Path]:
    """Where a dataset added through the API may be written (absolute paths).

    ``[api] data_root`` when given; otherwise the folders of the configured
    datasets, or the current directory when there are none.
    """
    roots = conf.data_root or tuple(ds.directory for ds in conf.datasets) or (Path.cwd(),)
    out: list[Path] = []
    for root in roots:
        absolute = Path(os.path.abspath(root))
        if absolute not in out:
            out.append(absolute)
    return out


def _listen(session: dict[str, Any], where: str) -> str | None:
    if "listen" not in session:
        return None  # the engine's default, which may move to a free port
    value: str = _get(session, "listen", str, "", where, "session")
    try:
        listen_interface(value)  # a host name must resolve now, not when the session starts
    except UsageError as exc:
        raise ConfigError(where, f"session.listen {_show(value)}: {exc.reason}") from exc
    return value


def _peers(table: dict[str, Any], where: str, section: str) -> tuple[str, ...]:
    """HOST:PORT values; a name is resolved when the dataset starts (one that
    does not resolve then refuses that dataset alone)."""
    peers = _strings(table, "peers", where, section)
    for peer in peers:
        try:
            split_host_port(peer)
        except UsageError as exc:
            raise ConfigError(where, f"{section}.peers {_show(peer)}: {exc.reason}") from exc
    return peers


def _show(value: Any) -> str:
    """A value for an error line: short, and safe however deeply it nests."""
    return reprlib.repr(value)


def _first_line(exc: BaseException) -> str:
    return str(exc).split(";")[0].splitlines()[0] if str(exc) else type(exc).__name__


def _roots(api: dict[str, Any], where: str) -> tuple[Path, ...]:
    value = api.get("data_root", [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(where, "api.data_root must be a folder or a list of folders")
    return tuple(Path(v) for v in value)


def _table(doc: dict[str, Any], name: str, keys: set[str], where: str) -> dict[str, Any]:
    table = doc.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(where, f"[{name}] must be a table")
    unknown = set(table) - keys
    if unknown:
        raise ConfigError(where, f"[{name}]: unknown key {_show(sorted(unknown)[0])}")
    return table


def _get(
    table: dict[str, Any], key: str, kind: type, default: Any, where: str, section: str
) -> Any:
    value = table.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(where, f"{section}.{key} must be {kind.__name__}, got {_show(value)}")
    if isinstance(value, str) and "\0" in value:
        # Paths and URLs: the OS refuses a NUL anyway, with an error that is no one-liner.
        raise ConfigError(where, f"{section}.{key} must not contain a NUL character")
    return value


def _size(table: dict[str, Any], key: str, where: str) -> int:
    value = table.get(key, 0)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    try:
        return parse_size(str(value))
    except ValueError as exc:
        raise ConfigError(where, f"session.{key}: {exc}") from exc


def _hours(value: Any, where: str, section: str) -> float:
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinity"):
        return math.inf
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise ConfigError(where, f'{section}.seed_hours must be a number >= 0 or "inf"')


def _strings(table: dict[str, Any], key: str, where: str, section: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(where, f"{section}.{key} must be a list of strings")
    if any("\0" in v for v in value):
        raise ConfigError(where, f"{section}.{key} must not contain a NUL character")
    return tuple(value)


def _dataset(raw: Any, index: int | None, where: str) -> GetOptions:
    section = "dataset" if index is None else f"dataset[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(where, f"{section} must be a table")
    unknown = set(raw) - _DATASET_KEYS
    if unknown:
        raise ConfigError(where, f"{section}: unknown key {_show(sorted(unknown)[0])}")
    if "source" not in raw:
        raise ConfigError(where, f"{section}: 'source' is required")
    ratio = raw.get("seed_ratio")
    if ratio is not None and not (isinstance(ratio, (int, float)) and ratio >= 0):
        raise ConfigError(where, f"{section}.seed_ratio must be a number >= 0")
    timeout = raw.get("timeout")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ConfigError(where, f"{section}.timeout must be a number > 0")
    rank = raw.get("rank")
    world = raw.get("world_size")
    for name, value in (("rank", rank), ("world_size", world)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(where, f"{section}.{name} must be an integer")
    opts = GetOptions(
        source=_get(raw, "source", str, "", where, section),
        directory=Path(_get(raw, "dir", str, "data", where, section)),
        seed_hours=_hours(raw.get("seed_hours", "inf"), where, section),
        seed_ratio=float(ratio) if ratio is not None else None,
        peers=_peers(raw, where, section),
        web_seeds=_strings(raw, "web_seeds", where, section),
        trackers=_strings(raw, "trackers", where, section),
        timeout=float(timeout) if timeout is not None else None,
        default_trackers=not _get(raw, "no_default_trackers", bool, False, where, section),
        rank=rank,
        world_size=world,
        only_mine=_get(raw, "only_mine", bool, False, where, section),
        window=_get(raw, "window", int, 3, where, section) if "window" in raw else None,
        slice=_get(raw, "slice", str, "", where, section) or None,
    )
    try:
        ordering_of(opts)  # rank, slice and window that contradict: refused at load
    except UsageError as exc:
        raise ConfigError(where, f"{section}: {exc}") from exc
    return opts
