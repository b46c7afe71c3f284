"""``verify``: a clean dataset passes; each kind of damage is caught and names the shard."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    CliRun,
    ConsoleRun,
    Created,
    CreateRun,
    assert_one_line_error,
    sha256_of,
)
from torrentds.service import verify as checking


@pytest.fixture
def packed(tiny_imagenet: Path, create: CreateRun) -> Created:
    """Tiny-ImageNet packed into several shards per split, with its .torrent."""
    made = create(tiny_imagenet, "--shard-size", "20K")
    assert len([s for s in made.manifest["shards"] if s["split"] == "train"]) >= 2
    return made


def shard_path(made: Created, index: int) -> Path:
    rel: str = made.manifest["shards"][index]["path"]
    return made.dataset_dir / rel


def fails_naming(cli: CliRun, folder: Path, shard: Path) -> list[str]:
    """``verify FOLDER`` exits 1 naming ``shard`` on stderr; returns the report's problems."""
    result = cli("verify", str(folder), expect=1)
    fail_lines = [line for line in result.stderr.splitlines() if line.startswith("FAIL ")]
    assert fail_lines, result.stderr
    assert any(str(shard) in line for line in fail_lines), result.stderr
    assert result.stdout.rstrip().endswith("problem(s) found")
    report = json.loads(cli("verify", str(folder), "--json", expect=1).stdout)
    assert report["ok"] is False
    problems: list[str] = report["problems"]
    assert problems == [line.removeprefix("FAIL").strip() for line in fail_lines]
    return problems


def rewrite_manifest(folder: Path, change: dict[str, Any], index: int) -> None:
    """Change fields of one shard entry in torrentds.json (and keep SHA256SUMS in step)."""
    path = folder / "torrentds.json"
    doc = json.loads(path.read_text())
    doc["shards"][index].update(change)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    (folder / "SHA256SUMS").write_text(
        "".join(f"{s['sha256']}  {s['path']}\n" for s in doc["shards"])
    )


def test_clean_dataset_passes(packed: Created, cli: CliRun) -> None:
    result = cli("verify", str(packed.dataset_dir))
    assert result.stdout.rstrip().endswith("OK")
    assert result.stderr == ""
    report = json.loads(cli("verify", str(packed.dataset_dir), "--json").stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["torrent"] == str(packed.dataset_dir / ".torrentds" / "dataset.torrent")
    assert report["pieces_checked"] == packed.result["pieces"]
    assert report["shards_checked"] == len(packed.manifest["shards"])
    splits = {s["split"]: s for s in report["splits"]}
    assert splits["train"]["samples"] == 18
    assert splits["train"]["classes_seen"] == 3
    assert splits["train"]["extensions"] == ["cls", "png"]
    assert splits["test"]["extensions"] == ["png"]  # unlabelled split


def test_clean_adopted_dataset_passes_with_explicit_torrent(
    adopted_tree: Path, create: CreateRun
) -> None:
    made = create(adopted_tree)
    report = checking.verify(adopted_tree, made.torrent)
    assert report.problems == []
    assert report.torrent == str(made.torrent)
    assert report.pieces_checked == made.result["pieces"] > 0
    assert [s.extensions for s in report.splits] == [["bin", "json"], ["bin", "json"]]


def test_flipped_byte(packed: Created, cli: CliRun, console: ConsoleRun) -> None:
    shard = shard_path(packed, 1)
    entry = packed.manifest["shards"][1]
    with tarfile.open(shard) as tar:
        offset = tar.getmembers()[0].offset_data + 100  # inside the first image
    data = bytearray(shard.read_bytes())
    data[offset] ^= 0x01
    shard.write_bytes(bytes(data))

    problems = fails_naming(cli, packed.dataset_dir, shard)
    piece = entry["first_piece"] + offset // packed.manifest["piece_size"]
    assert f"{shard}: piece {piece}: piece hash mismatch" in problems
    assert any(p.startswith(f"{shard}: sha256 ") for p in problems)
    assert all(str(shard) in p for p in problems), "only the damaged shard is blamed"

    # The real console script: exit 1, the shard named on stderr.
    proc = console("verify", str(packed.dataset_dir))
    assert proc.returncode == 1
    assert f"FAIL     {shard}: sha256" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_shard(packed: Created, cli: CliRun) -> None:
    shard = shard_path(packed, 0)
    shard.unlink()
    problems = fails_naming(cli, packed.dataset_dir, shard)
    assert f"{shard}: missing" in problems


def test_truncated_shard(packed: Created, cli: CliRun) -> None:
    shard = shard_path(packed, 2)
    size = shard.stat().st_size
    with open(shard, "r+b") as fh:
        fh.truncate(size // 2)
    problems = fails_naming(cli, packed.dataset_dir, shard)
    assert f"{shard}: {size // 2} bytes, manifest says {size}" in problems
    assert any(p.startswith(f"{shard}: piece ") for p in problems)


def test_manifest_sample_count_off(packed: Created, cli: CliRun) -> None:
    entry = packed.manifest["shards"][0]
    rewrite_manifest(packed.dataset_dir, {"samples": entry["samples"] + 1}, 0)
    shard = shard_path(packed, 0)
    problems = fails_naming(cli, packed.dataset_dir, shard)
    assert f"{shard}: {entry['samples']} samples, manifest says {entry['samples'] + 1}" in problems


def test_label_out_of_range(packed: Created, cli: CliRun) -> None:
    """Only the label check can see this: sha256 fixed in the manifest, no .torrent."""
    shard = shard_path(packed, 0)
    with tarfile.open(shard) as tar:
        label = next(m for m in tar.getmembers() if m.name.endswith(".cls"))
    assert label.size == 1
    data = bytearray(shard.read_bytes())
    assert bytes(data[label.offset_data : label.offset_data + 1]) in (b"0", b"1", b"2")
    data[label.offset_data] = ord("7")  # same length: the tar stays valid, size unchanged
    shard.write_bytes(bytes(data))
    rewrite_manifest(packed.dataset_dir, {"sha256": hashlib.sha256(data).hexdigest()}, 0)
    (packed.dataset_dir / ".torrentds" / "dataset.torrent").unlink()

    problems = fails_naming(cli, packed.dataset_dir, shard)
    assert problems == [f"{shard}: label 7 outside [0, 3)"]


def test_extra_unlisted_shard(packed: Created, cli: CliRun) -> None:
    extra = packed.dataset_dir / "train" / "train-000099.tar"
    shutil.copyfile(shard_path(packed, 0), extra)
    problems = fails_naming(cli, packed.dataset_dir, extra)
    assert problems == [f"{extra}: shard on disk is not in the manifest"]


def test_unlisted_shard_in_hidden_folder_is_ignored(packed: Created, cli: CliRun) -> None:
    hidden = packed.dataset_dir / ".torrentds" / "old.tar"
    shutil.copyfile(shard_path(packed, 0), hidden)
    assert json.loads(cli("verify", str(packed.dataset_dir), "--json").stdout)["ok"] is True


def test_not_a_dataset_folder(tmp_path: Path, console: ConsoleRun) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    proc = console("verify", str(folder))
    line = assert_one_line_error(proc, str(folder / "torrentds.json"), code=1)
    assert "no manifest" in line
    proc = console("verify", str(tmp_path / "absent"))
    assert_one_line_error(proc, str(tmp_path / "absent"), code=1)


def test_malformed_manifest(packed: Created, console: ConsoleRun) -> None:
    path = packed.dataset_dir / "torrentds.json"
    path.write_text('{"schema": 1, "name": "x"')
    before = sha256_of(path)
    proc = console("verify", str(packed.dataset_dir))
    line = assert_one_line_error(proc, str(path), code=1)
    assert "not valid JSON" in line
    assert sha256_of(path) == before
