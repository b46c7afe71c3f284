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
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from create_steps import (
    MIB,
    TRACKER,
    Row,
    Step,
    ToolFailed,
    cached_fraction,
    hashlib_rate,
    read_all,
    remove,
    results_table,
    run_timed,
)
from harness import data
from harness.report import cpu_model, mem_total, now, tool_version
from harness.session import progress, require

log = progress("bench")


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
    require(p, ["mktorrent", "sha1sum"])
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
    work, created = prepare_workdir(args.workdir)
    need = args.size_mb * MIB + 2 * args.raw_size_mb * MIB + 256 * MIB
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
            log(f"kept {work}")
        elif created:
            shutil.rmtree(work, ignore_errors=True)
        else:
            for path in list(work.iterdir()):
                shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class Inputs:
    """The generated data, in page cache."""

    shards_dir: Path  # the adopted dataset: shards/train/train-NNNNNN.tar
    shards: list[Path]
    raw_dir: Path  # the raw dataset; torrentds packs it into imagefolder-wds
    images: list[Path]

    @property
    def shard_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.shards)

    @property
    def raw_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.images)


def generate(args: argparse.Namespace, work: Path) -> Inputs:
    shards_dir, raw_dir = work / "shards", work / "imagefolder"
    log(f"writing {args.shards} shards, {args.size_mb} MiB of samples, to {shards_dir}")
    t0 = time.perf_counter()
    rng = random.Random(args.seed)
    plan = data.jittered_plan(args.size_mb * MIB, args.shards, rng)
    shards = data.write_shards(shards_dir / "train", plan, rng)
    log(f"  done in {time.perf_counter() - t0:.1f} s")
    log(f"writing an ImageFolder of ~{args.raw_size_mb} MiB of PNGs to {raw_dir}")
    t0 = time.perf_counter()
    images = data.write_imagefolder(raw_dir, args.raw_size_mb * MIB, args.raw_file_kb, args.seed)
    log(f"  {len(images)} images in {time.perf_counter() - t0:.1f} s")
    log("warming the page cache")
    read_all(shards)
    read_all(images)
    return Inputs(shards_dir, shards, raw_dir, images)


def shown(cmd: Sequence[str], cli: str, work: Path, files: Sequence[Path] = ()) -> str:
    """The command as run, with the work dir and the file list folded, for the table."""
    words = ["torrentds" if c == cli else c for c in cmd[: len(cmd) - len(files)]]
    text = " ".join(words).replace(f"{work}/", "")
    return text + (f" <the {len(files)} shards>" if files else "")


def adopt_step(cli: str, work: Path, inputs: Inputs) -> Step:
    """``torrentds create`` adopting the shards; before each run, what it wrote is removed."""
    folder, torrent = inputs.shards_dir, work / "out" / "adopt.torrent"
    cmd = [cli, "create", str(folder), "--no-default-trackers", "--tracker", TRACKER]
    cmd += ["-o", str(torrent), "--force"]

    def clean() -> None:
        remove(torrent, folder / "torrentds.json", folder / "SHA256SUMS", folder / ".torrentds")

    label = "torrentds create, adopt (sha256 + sha1 pieces)"
    return Step(cmd, Row(label, shown(cmd, cli, work), inputs.shard_bytes), clean)


def other_steps(args: argparse.Namespace, work: Path, inputs: Inputs, exponent: int) -> list[Step]:
    """mktorrent, sha1sum, packing the ImageFolder and cat, in the table's order;
    ``exponent``: log2 of the piece size torrentds chose, for mktorrent."""
    cli: str = args.torrentds
    out, shards, size = work / "out", inputs.shards, inputs.shard_bytes
    mk_out, raw_out = out / "mktorrent.torrent", out / "imagefolder.torrent"
    mk = ["mktorrent", "-t", str(args.threads), "-l", str(exponent), "-a", TRACKER]
    mk += ["-o", str(mk_out), str(inputs.shards_dir)]
    pack = [cli, "create", str(inputs.raw_dir), "--no-default-trackers", "--tracker", TRACKER]
    pack += ["--shard-size", "64M", "-o", str(raw_out)]
    sha, cat = ["sha1sum", *map(str, shards)], ["cat", *map(str, shards)]
    mk_label = f"mktorrent (sha1 pieces, {args.threads} threads)"
    pack_label = "torrentds create, pack ImageFolder → 64 MiB shards"
    cat_label = "reference: cat > /dev/null (read only)"
    return [
        Step(mk, Row(mk_label, shown(mk, cli, work), size), lambda: remove(mk_out)),
        Step(sha, Row("sha1sum (one process, one core)", shown(sha, cli, work, shards), size)),
        Step(
            pack,
            Row(pack_label, shown(pack, cli, work), inputs.raw_bytes),
            lambda: remove(raw_out, work / "imagefolder-wds"),
        ),
        Step(cat, Row(cat_label, shown(cat, cli, work, shards), size)),
    ]


def piece_exponent(adopt: Step, shards_dir: Path) -> int:
    """An untimed adopt run: loads the CLI's modules into cache and tells the piece size
    (as log2), which mktorrent is then given."""
    log("warm-up run of torrentds create (adopt), untimed")
    adopt.clean()
    run_timed(adopt.cmd)
    manifest = json.loads((shards_dir / "torrentds.json").read_text("utf-8"))
    piece_size = int(manifest["piece_size"])
    exponent = piece_size.bit_length() - 1
    if 1 << exponent != piece_size:
        raise ValueError(f"manifest piece_size {piece_size} is not a power of two")
    adopt.clean()  # mktorrent and sha1sum see exactly the shards, nothing else
    return exponent


def run(args: argparse.Namespace, work: Path) -> int:
    (work / "out").mkdir()
    inputs = generate(args, work)
    adopt = adopt_step(args.torrentds, work, inputs)
    try:
        exponent = piece_exponent(adopt, inputs.shards_dir)
    except (ToolFailed, ValueError) as exc:
        print(f"torrentds create (adopt) failed in the warm-up run:\n{exc}", file=sys.stderr)
        return 1
    mk, sha, pack, cat = other_steps(args, work, inputs, exponent)
    cached = cached_fraction(inputs.shards)
    for i in range(args.repeat):
        log(f"round {i + 1}/{args.repeat}")
        read_all(inputs.shards)  # keep the shards hot after the pack step wrote 0.5 GB
        adopt.measure()
        adopt.clean()
        for step in (mk, sha, cat):
            step.measure()
        read_all(inputs.images)
        pack.measure()
    rows = [adopt.row, mk.row, sha.row, pack.row, cat.row]
    print("\n".join(report(args, inputs, rows, exponent, cached)))
    return 1 if any(r.error for r in rows) else 0


def report(
    args: argparse.Namespace,
    inputs: Inputs,
    rows: Sequence[Row],
    exponent: int,
    cached: float | None,
) -> list[str]:
    cli: str = args.torrentds
    log("hashlib reference rates (one core, in-process)")
    sha1, sha256 = hashlib_rate(["sha1"]), hashlib_rate(["sha256"])
    both = hashlib_rate(["sha1", "sha256"])
    startup = statistics.median(run_timed([cli, "--version"]) for _ in range(3))
    ncpu = os.cpu_count() or 1
    lines = [
        "### `torrentds create` throughput",
        "",
        f"- date: {now()}",
        f"- machine: {ncpu} cores (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}, "
        f"{mem_total()} RAM, Linux {platform.release()}",
        f"- python: {platform.python_version()} ({sys.executable})",
        f"- tools: {tool_version([cli, '--version'])}; {tool_version(['mktorrent', '-h'])}; "
        f"{tool_version(['sha1sum', '--version'])}",
        f"- data: {args.shards} tar shards, {inputs.shard_bytes / 1e6:,.0f} MB "
        f"({args.size_mb} MiB of ~1 MiB random samples + tar headers); piece size chosen by "
        f"torrentds: {(1 << exponent) // 1024} KiB (mktorrent -l {exponent}); raw ImageFolder: "
        f"{len(inputs.images)} PNGs, {inputs.raw_bytes / 1e6:,.0f} MB",
    ]
    if cached is not None:
        lines.append(f"- page cache before the timed runs: {cached:.0%} of the shards resident")
    lines += [
        f"- runs per tool: {args.repeat} (median reported); MB = 10^6 bytes; wall clock of the "
        f"whole process, including start-up (`torrentds --version` takes {startup:.2f} s)",
        "",
        *results_table(rows),
        "",
    ]
    adopt, mk = rows[0].mb_per_s, rows[1].mb_per_s
    if adopt is not None and mk is not None:
        lines += [f"**torrentds adopt / mktorrent: {adopt / mk:.2f}x**", ""]
    lines.append(
        f"hashlib on one core, cached 4 MiB buffers: sha1 {sha1:,.0f} MB/s, "
        f"sha256 {sha256:,.0f} MB/s, sha1+sha256 of the same bytes {both:,.0f} MB/s "
        f"(x {ncpu} cores = {both * ncpu:,.0f} MB/s, the ceiling for adopt mode; "
        f"sha1 alone x {ncpu} = {sha1 * ncpu:,.0f} MB/s)."
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
