"""Benchmark ``torrentds create`` against mktorrent and sha1sum, all reading from page cache.

One run generates a dataset of tar shards (not timed), warms the page cache, then times:

* ``torrentds create`` adopting the shards (sha256 per shard + sha1 per piece, one read pass);
* ``mktorrent`` on the same folder with the piece size torrentds chose (sha1 only);
* ``sha1sum`` over the same files in one process (sha1 only, one core);
* ``torrentds create`` packing a raw ImageFolder tree into 64 MiB shards (reads, writes
  with fsync, hashes);

and prints a markdown table of MB/s (10^6 bytes per second), ready for BENCHMARKS.md.
Nothing here opens a socket: the tracker URL is only written into the .torrent files and
no web seed is passed. Run with the project's venv::

    .venv/bin/python benchmarks/create.py [--size-mb 2048] [--shards 16] [--repeat 1]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from torrentds.dataset.demo_data import png_bytes

MIB = 1 << 20
TRACKER = "http://127.0.0.1:6969/announce"
READ_CHUNK = 4 * MIB
RAW_CLASSES = 10


class ToolFailed(Exception):
    """A timed command exited non-zero; carries its command line and stderr."""

    def __init__(self, cmd: Sequence[str], code: int, stderr: str) -> None:
        super().__init__(f"{' '.join(cmd)} exited {code}: {stderr.strip()}")
        self.cmd = list(cmd)
        self.code = code
        self.stderr = stderr


@dataclass
class Row:
    step: str
    command: str
    data_bytes: int
    times: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and self.error is None else None

    @property
    def mb_per_s(self) -> float | None:
        med = self.median
        return self.data_bytes / 1e6 / med if med else None


# --------------------------------------------------------------------------- data


def write_shards(root: Path, total_bytes: int, shards: int, seed: int) -> list[Path]:
    """``root/train/train-NNNNNN.tar``: samples ``NNNNNN.bin`` (~1 MiB random) + ``.cls``."""
    rng = random.Random(seed)
    out_dir = root / "train"
    out_dir.mkdir(parents=True)
    paths: list[Path] = []
    key = 0
    per_shard = [
        total_bytes // shards + (1 if i < total_bytes % shards else 0) for i in range(shards)
    ]
    for number, budget in enumerate(per_shard):
        path = out_dir / f"train-{number:06d}.tar"
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            left = budget
            while left > 0:
                key += 1
                size = min(left, int(rng.uniform(0.75, 1.25) * MIB))
                left -= size
                _add(tar, f"{key:06d}.bin", os.urandom(size))
                _add(tar, f"{key:06d}.cls", str(rng.randrange(RAW_CLASSES)).encode())
        paths.append(path)
    return paths


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_imagefolder(root: Path, total_bytes: int, file_kb: int, seed: int) -> list[Path]:
    """``root/train/<class>/<n>.png``: real PNGs of seeded noise, ~``file_kb`` KB each."""
    rng = random.Random(seed)
    side = max(8, int((file_kb * 1000 / 3) ** 0.5))  # RGB noise barely compresses
    paths: list[Path] = []
    written = 0
    n = 0
    while written < total_bytes:
        folder = root / "train" / f"class{n % RAW_CLASSES:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{n:07d}.png"
        data = png_bytes(rng, side)
        path.write_bytes(data)
        written += len(data)
        paths.append(path)
        n += 1
    return paths


def read_all(paths: Sequence[Path]) -> int:
    """Read every file once (fills the page cache); returns the bytes read."""
    total = 0
    for path in paths:
        with open(path, "rb", buffering=0) as fh:
            while chunk := fh.read(READ_CHUNK):
                total += len(chunk)
    return total


def cached_fraction(paths: Sequence[Path]) -> float | None:
    """Share of the files' bytes resident in page cache, from util-linux ``fincore``."""
    if shutil.which("fincore") is None or not paths:
        return None
    proc = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    res = size = 0
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            res += int(parts[0])
            size += int(parts[1])
    return res / size if size else None


# --------------------------------------------------------------------------- timing


def run_timed(cmd: Sequence[str]) -> float:
    """Wall-clock seconds of one subprocess run, output discarded; raises on failure."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise ToolFailed(cmd, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return elapsed


def measure(row: Row, cmd: Sequence[str], before: Callable[[], None] | None = None) -> None:
    """Run ``before`` (untimed) then ``cmd`` (timed), recording the time or the failure."""
    if row.error is not None:
        return
    if before is not None:
        before()
    try:
        row.times.append(run_timed(cmd))
    except ToolFailed as exc:
        row.error = f"exit {exc.code}: {exc.stderr.strip() or '(no stderr)'}"
        print(f"FAILED {' '.join(cmd)}\n{exc.stderr}", file=sys.stderr)


def hashlib_rate(names: Sequence[str], total: int = 512 * MIB) -> float:
    """MB/s of hashing ``total`` bytes with every algorithm in ``names``, one core."""
    buf = os.urandom(READ_CHUNK)
    start = time.perf_counter()
    for _ in range(total // len(buf)):
        for name in names:
            hashlib.new(name, buf).digest()
    return total / 1e6 / (time.perf_counter() - start)


def remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


# --------------------------------------------------------------------------- report


def tool_version(cmd: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def print_table(rows: Sequence[Row]) -> None:
    print("| step | command | data (MB) | runs | time (s, median) | MB/s (median) |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        runs = ", ".join(f"{t:.2f}" for t in r.times) if len(r.times) > 1 else str(len(r.times))
        speed = f"**{fmt(r.mb_per_s, '.0f')}**" if r.error is None else f"FAILED ({r.error})"
        print(
            f"| {r.step} | `{r.command}` | {r.data_bytes / 1e6:,.0f} | {runs} "
            f"| {fmt(r.median, '.2f')} | {speed} |"
        )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    default_cli = Path(sys.executable).parent / "torrentds"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mb", type=int, default=2048, help="shard payload in MiB (2048)")
    p.add_argument("--shards", type=int, default=16, help="number of tar shards (16)")
    p.add_argument("--raw-size-mb", type=int, default=512, help="raw ImageFolder MiB (512)")
    p.add_argument("--raw-file-kb", type=int, default=100, help="size of one raw image (100)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per tool; median (1)")
    p.add_argument("--workdir", type=Path, help="default: a fresh temp dir under /tmp")
    p.add_argument("--keep", action="store_true", help="keep the generated data afterwards")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="mktorrent -t")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--torrentds",
        default=str(default_cli) if default_cli.exists() else shutil.which("torrentds"),
        help=f"torrentds executable (default {default_cli})",
    )
    args = p.parse_args(argv)
    if min(args.size_mb, args.shards, args.raw_size_mb, args.raw_file_kb, args.repeat) < 1:
        p.error("sizes, --shards and --repeat must be positive")
    if not args.torrentds:
        p.error("torrentds executable not found (pass --torrentds)")
    for tool in ("mktorrent", "sha1sum"):
        if shutil.which(tool) is None:
            p.error(f"{tool} not found on PATH")
    return args


def prepare_workdir(arg: Path | None) -> tuple[Path, bool]:
    """The working folder and whether this script created it."""
    if arg is None:
        return Path(tempfile.mkdtemp(prefix="torrentds-bench-", dir="/tmp")), True
    work = arg.resolve()
    if work.exists():
        if not work.is_dir() or any(work.iterdir()):
            raise SystemExit(f"--workdir {work} must be an empty folder or not exist")
        return work, False
    work.mkdir(parents=True)
    return work, True


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    shard_bytes_target = args.size_mb * MIB
    raw_bytes_target = args.raw_size_mb * MIB
    work, created = prepare_workdir(args.workdir)
    need = shard_bytes_target + 2 * raw_bytes_target + 256 * MIB
    free = shutil.disk_usage(work).free
    if free < need:
        if created:
            shutil.rmtree(work)
        raise SystemExit(
            f"{work}: {free / 1e9:.1f} GB free, need ~{need / 1e9:.1f} GB; "
            "use smaller --size-mb / --raw-size-mb"
        )

    try:
        return run(args, work)
    finally:
        if args.keep:
            print(f"\n(kept {work})", file=sys.stderr)
        elif created:
            shutil.rmtree(work, ignore_errors=True)
        else:
            for path in list(work.iterdir()):
                shutil.rmtree(path, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    cli: str = args.torrentds
    data = work / "shards"  # the adopted dataset: shards/train/train-NNNNNN.tar
    raw = work / "imagefolder"  # the raw dataset; torrentds packs it into imagefolder-wds
    raw_wds = work / "imagefolder-wds"
    out = work / "out"
    out.mkdir()

    def log(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    log(f"writing {args.shards} shards, {args.size_mb} MiB of samples, to {data}")
    t0 = time.perf_counter()
    shards = write_shards(data, args.size_mb * MIB, args.shards, args.seed)
    log(f"  done in {time.perf_counter() - t0:.1f} s")
    log(f"writing an ImageFolder of ~{args.raw_size_mb} MiB of PNGs to {raw}")
    t0 = time.perf_counter()
    images = write_imagefolder(raw, args.raw_size_mb * MIB, args.raw_file_kb, args.seed)
    log(f"  {len(images)} images in {time.perf_counter() - t0:.1f} s")

    shard_bytes = sum(p.stat().st_size for p in shards)
    raw_bytes = sum(p.stat().st_size for p in images)
    log("warming the page cache")
    read_all(shards)
    read_all(images)

    torrent_out = out / "adopt.torrent"
    own_outputs = (data / "torrentds.json", data / "SHA256SUMS", data / ".torrentds")
    adopt_cmd = [
        cli,
        "create",
        str(data),
        "--no-default-trackers",
        "--tracker",
        TRACKER,
        "-o",
        str(torrent_out),
        "--force",
    ]

    def clean_adopt() -> None:
        remove(torrent_out, *own_outputs)

    # Untimed warm-up: loads the CLI's modules into cache and tells us the piece size.
    log("warm-up run of torrentds create (adopt), untimed")
    clean_adopt()
    try:
        run_timed(adopt_cmd)
    except ToolFailed as exc:
        print(f"torrentds create (adopt) failed in the warm-up run:\n{exc}", file=sys.stderr)
        return 1
    piece_size = int(json.loads((data / "torrentds.json").read_text("utf-8"))["piece_size"])
    exponent = piece_size.bit_length() - 1
    if 1 << exponent != piece_size:
        print(f"manifest piece_size {piece_size} is not a power of two", file=sys.stderr)
        return 1
    clean_adopt()  # mktorrent and sha1sum see exactly the shards, nothing else

    mk_out = out / "mktorrent.torrent"
    mk_cmd = [
        "mktorrent",
        "-t",
        str(args.threads),
        "-l",
        str(exponent),
        "-a",
        TRACKER,
        "-o",
        str(mk_out),
        str(data),
    ]
    sha_cmd = ["sha1sum", *map(str, shards)]
    cat_cmd = ["cat", *map(str, shards)]
    raw_out = out / "imagefolder.torrent"
    raw_cmd = [
        cli,
        "create",
        str(raw),
        "--no-default-trackers",
        "--tracker",
        TRACKER,
        "--shard-size",
        "64M",
        "-o",
        str(raw_out),
    ]

    def show(cmd: Sequence[str], files: Sequence[Path] = ()) -> str:
        """The command as run, with the work dir and the file list folded, for the table."""
        shown = ["torrentds" if c == cli else c for c in cmd[: len(cmd) - len(files)]]
        text = " ".join(shown).replace(f"{work}/", "")
        return text + (f" <the {len(files)} shards>" if files else "")

    rows = {
        "adopt": Row(
            "torrentds create, adopt (sha256 + sha1 pieces)", show(adopt_cmd), shard_bytes
        ),
        "mktorrent": Row(
            f"mktorrent (sha1 pieces, {args.threads} threads)", show(mk_cmd), shard_bytes
        ),
        "sha1sum": Row("sha1sum (one process, one core)", show(sha_cmd, shards), shard_bytes),
        "pack": Row("torrentds create, pack ImageFolder → 64 MiB shards", show(raw_cmd), raw_bytes),
        "cat": Row("reference: cat > /dev/null (read only)", show(cat_cmd, shards), shard_bytes),
    }

    cached_shards = cached_fraction(shards)
    for i in range(args.repeat):
        log(f"round {i + 1}/{args.repeat}")
        read_all(shards)  # keep the shards hot after the pack step wrote 0.5 GB
        measure(rows["adopt"], adopt_cmd, clean_adopt)
        clean_adopt()
        measure(rows["mktorrent"], mk_cmd, lambda: remove(mk_out))
        measure(rows["sha1sum"], sha_cmd)
        measure(rows["cat"], cat_cmd)
        read_all(images)
        measure(rows["pack"], raw_cmd, lambda: remove(raw_out, raw_wds))

    log("hashlib reference rates (one core, in-process)")
    rate_sha1 = hashlib_rate(["sha1"])
    rate_sha256 = hashlib_rate(["sha256"])
    rate_both = hashlib_rate(["sha1", "sha256"])
    startup = [run_timed([cli, "--version"]) for _ in range(3)]

    ncpu = os.cpu_count() or 1
    print("### `torrentds create` throughput\n")
    print(f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
    print(
        f"- machine: {ncpu} cores (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}, "
        f"{mem_total()} RAM, Linux {platform.release()}"
    )
    print(f"- python: {platform.python_version()} ({sys.executable})")
    print(
        f"- tools: {tool_version([cli, '--version'])}; {tool_version(['mktorrent', '-h'])}; "
        f"{tool_version(['sha1sum', '--version'])}"
    )
    print(
        f"- data: {args.shards} tar shards, {shard_bytes / 1e6:,.0f} MB "
        f"({args.size_mb} MiB of ~1 MiB random samples + tar headers); "
        f"piece size chosen by torrentds: {piece_size // 1024} KiB (mktorrent -l {exponent}); "
        f"raw ImageFolder: {len(images)} PNGs, {raw_bytes / 1e6:,.0f} MB"
    )
    if cached_shards is not None:
        print(f"- page cache before the timed runs: {cached_shards:.0%} of the shards resident")
    print(
        f"- runs per tool: {args.repeat} (median reported); MB = 10^6 bytes; wall clock of the "
        "whole process, including start-up "
        f"(`torrentds --version` takes {statistics.median(startup):.2f} s)"
    )
    print()
    print_table(list(rows.values()))
    print()
    adopt, mk = rows["adopt"].mb_per_s, rows["mktorrent"].mb_per_s
    if adopt is not None and mk is not None:
        print(f"**torrentds adopt / mktorrent: {adopt / mk:.2f}x**\n")
    print(
        f"hashlib on one core, cached 4 MiB buffers: sha1 {rate_sha1:,.0f} MB/s, "
        f"sha256 {rate_sha256:,.0f} MB/s, sha1+sha256 of the same bytes {rate_both:,.0f} MB/s "
        f"(x {ncpu} cores = {rate_both * ncpu:,.0f} MB/s, the ceiling for adopt mode; "
        f"sha1 alone x {ncpu} = {rate_sha1 * ncpu:,.0f} MB/s)."
    )
    return 1 if any(r.error for r in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
