"""Packing: every sample read back with ``webdataset`` equals its source file.

Shards are real tar files read by the real ``webdataset`` loader (no decoding,
raw bytes compared), and labels are checked against the manifest's class list.
"""

from __future__ import annotations

import random
import tarfile
from pathlib import Path
from typing import Any

import pytest
import webdataset

from tests.conftest import (
    CliRun,
    CreateRun,
    base_create_args,
    make_shard,
    sha256_of,
    shard_members,
    write_images,
)

DUNDER_PREFIX = "__"


def read_wds(urls: list[Path]) -> list[dict[str, Any]]:
    """Every sample of ``urls`` in order, undecoded, without the ``__url__``-style fields."""
    dataset = webdataset.WebDataset([str(u) for u in urls], shardshuffle=False)
    out: list[dict[str, Any]] = []
    for sample in dataset:
        assert isinstance(sample, dict)
        out.append(
            {k: v for k, v in sample.items() if k == "__key__" or not k.startswith(DUNDER_PREFIX)}
        )
    return out


def split_urls(dataset_dir: Path, manifest: dict[str, Any], split: str) -> list[Path]:
    return [dataset_dir / s["path"] for s in manifest["shards"] if s["split"] == split]


def samples_by_key(samples: list[dict[str, Any]]) -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {}
    for sample in samples:
        key = sample["__key__"]
        assert key not in out, f"sample key {key!r} read twice"
        out[key] = {k: v for k, v in sample.items() if k != "__key__"}
    return out


def test_imagefolder_round_trip(image_folder: Path, create: CreateRun) -> None:
    made = create(image_folder, "--shard-size", "16K")
    doc = made.manifest
    assert doc["layout"] == "imagefolder"
    classes = doc["classes"]
    assert classes == ["cat", "dog", "emu"]  # sorted over every split
    assert len(split_urls(made.dataset_dir, doc, "train")) > 1, "want several train shards"

    for split in ("train", "val"):
        expected: dict[str, dict[str, bytes]] = {}
        for image in sorted((image_folder / split).glob("*/*.png")):
            # The label is the index of the class folder in the sorted class list,
            # the same in every split (val has no "dog", so emu is still 2 there).
            label = classes.index(image.parent.name)
            expected[image.stem] = {"png": image.read_bytes(), "cls": str(label).encode()}
        samples = read_wds(split_urls(made.dataset_dir, doc, split))
        assert [s["__key__"] for s in samples] == list(expected), "sample order"
        assert samples_by_key(samples) == expected
        assert sum(s["samples"] for s in doc["shards"] if s["split"] == split) == len(expected)
        assert doc["splits"][split]["samples"] == len(expected)

    val = samples_by_key(read_wds(split_urls(made.dataset_dir, doc, "val")))
    assert val["v_emu0"]["cls"] == b"2"


def test_tiny_imagenet_round_trip(tiny_imagenet: Path, create: CreateRun) -> None:
    made = create(tiny_imagenet, "--shard-size", "16K")
    doc = made.manifest
    assert doc["layout"] == "tiny-imagenet"
    wnids = (tiny_imagenet / "wnids.txt").read_text().split()
    assert doc["classes"] == sorted(wnids)
    classes: list[str] = doc["classes"]
    assert set(doc["splits"]) == {"train", "val", "test"}

    train = samples_by_key(read_wds(split_urls(made.dataset_dir, doc, "train")))
    images = sorted((tiny_imagenet / "train").glob("*/images/*.png"))
    assert len(images) == 18
    assert train == {
        p.stem: {"png": p.read_bytes(), "cls": str(classes.index(p.parent.parent.name)).encode()}
        for p in images
    }

    annotations = dict(
        line.split("\t")[:2]
        for line in (tiny_imagenet / "val" / "val_annotations.txt").read_text().splitlines()
    )
    val = samples_by_key(read_wds(split_urls(made.dataset_dir, doc, "val")))
    assert val == {
        Path(name).stem: {
            "png": (tiny_imagenet / "val" / "images" / name).read_bytes(),
            "cls": str(classes.index(wnid)).encode(),
        }
        for name, wnid in annotations.items()
    }

    # test/images has no labels: samples carry the image only.
    test = samples_by_key(read_wds(split_urls(made.dataset_dir, doc, "test")))
    assert test == {
        p.stem: {"png": p.read_bytes()} for p in (tiny_imagenet / "test" / "images").glob("*.png")
    }
    assert len(test) == 3


@pytest.mark.parametrize("piece_size", [16 << 10, 64 << 10])
def test_packed_shards_are_padded_to_whole_pieces(
    tiny_imagenet: Path, create: CreateRun, piece_size: int
) -> None:
    made = create(tiny_imagenet, "--shard-size", "20K", "--piece-size", str(piece_size))
    doc = made.manifest
    assert doc["piece_size"] == piece_size
    assert len(doc["shards"]) >= 4
    for entry in doc["shards"]:
        path = made.dataset_dir / entry["path"]
        data = path.read_bytes()
        assert len(data) == entry["bytes"]
        assert len(data) % piece_size == 0, f"{path}: {len(data)} bytes"
        # The tar ends (two zero blocks) where its last member ends; all after is zero.
        with tarfile.open(path, mode="r:") as tar:
            members = tar.getmembers()
        last = members[-1]
        tar_end = last.offset_data + -(-last.size // 512) * 512
        assert data[tar_end:] == bytes(len(data) - tar_end)
        # webdataset stops at the end marker: exactly the manifest's samples, no extra.
        samples = read_wds([path])
        assert len(samples) == entry["samples"] == len({m.name.split(".")[0] for m in members})


def test_webdataset_reads_a_zero_padded_tar_exactly(tmp_path: Path) -> None:
    rng = random.Random(1)
    members = shard_members(rng, "k", 4)
    path = tmp_path / "padded.tar"
    plain = make_shard(path, members)
    pad = (-len(plain)) % (64 << 10) + (64 << 10)  # well past tar's own 10 KiB record
    path.write_bytes(plain + bytes(pad))
    assert path.stat().st_size % (64 << 10) == 0

    samples = read_wds([path])
    expected: dict[str, dict[str, bytes]] = {name.split(".")[0]: {} for name, _ in members}
    for name, data in members:
        key, ext = name.split(".", 1)
        expected[key][ext] = data
    assert samples_by_key(samples) == expected
    assert len(samples) == 4


def test_generic_folder_groups_files_by_key(tmp_path: Path, create: CreateRun) -> None:
    root = tmp_path / "audio"
    files = {
        "clips/001.wav": b"RIFF-one",
        "clips/001.json": b'{"text": "one"}',
        "clips/002.wav": b"RIFF-two" * 100,
        "clips/002.json": b'{"text": "two"}',
        "clips/003.wav": b"RIFF-three",
        "notes.txt": b"read me",
        "LICENSE": b"MIT",
        ".hidden": b"not data",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)

    made = create(root)
    doc = made.manifest
    assert doc["layout"] == "generic"
    assert doc["classes"] == []
    assert set(doc["splits"]) == {"train"}
    samples = samples_by_key(read_wds(split_urls(made.dataset_dir, doc, "train")))
    # Key = relative path without extension; a file without one is stored as .bin;
    # hidden files are not data.
    assert samples == {
        "LICENSE": {"bin": b"MIT"},
        "clips/001": {"json": b'{"text": "one"}', "wav": b"RIFF-one"},
        "clips/002": {"json": b'{"text": "two"}', "wav": b"RIFF-two" * 100},
        "clips/003": {"wav": b"RIFF-three"},
        "notes": {"txt": b"read me"},
    }
    assert doc["splits"]["train"]["samples"] == 5


def test_generic_folder_with_split_folders(tmp_path: Path, create: CreateRun) -> None:
    root = tmp_path / "texts"
    for rel in ("train/a.txt", "train/b.txt", "train/b.json", "test/c.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    made = create(root)
    doc = made.manifest
    assert set(doc["splits"]) == {"test", "train"}
    train = samples_by_key(read_wds(split_urls(made.dataset_dir, doc, "train")))
    assert train == {
        "a": {"txt": b"train/a.txt"},
        "b": {"json": b"train/b.json", "txt": b"train/b.txt"},
    }
    test = samples_by_key(read_wds(split_urls(made.dataset_dir, doc, "test")))
    assert test == {"c": {"txt": b"test/c.txt"}}


def test_same_image_name_in_two_classes_keeps_both(tmp_path: Path, create: CreateRun) -> None:
    root = tmp_path / "dups"
    rng = random.Random(2)
    cat = write_images(root / "train" / "cat", ["x.png", "y.png"], rng)
    dog = write_images(root / "train" / "dog", ["x.png"], rng)
    made = create(root)
    doc = made.manifest
    samples = samples_by_key(read_wds(split_urls(made.dataset_dir, doc, "train")))
    assert samples == {
        "cat/x": {"png": cat["x.png"], "cls": b"0"},
        "cat/y": {"png": cat["y.png"], "cls": b"0"},
        "dog/x": {"png": dog["x.png"], "cls": b"1"},
    }


def test_clashing_image_keys_are_refused(tmp_path: Path, create: CreateRun, cli: CliRun) -> None:
    """``a.b.png`` and ``a_b.png`` in one class would share the key ``a_b``: refused."""
    root = tmp_path / "dotted"
    rng = random.Random(4)
    write_images(root / "train" / "cat", ["a.b.png", "a_b.png", "c.png"], rng)
    result = cli(*base_create_args(root, tmp_path / "dotted.torrent"), expect=1)
    assert "two images share the sample key 'cat/a_b'" in result.stderr
    assert str(root / "train") in result.stderr
    assert not (tmp_path / "dotted-wds").exists()
    assert not (tmp_path / "dotted.torrent").exists()

    # A dot alone is fine: it becomes '_' in the key and the bytes are kept.
    (root / "train" / "cat" / "a_b.png").unlink()
    made = create(root)
    samples = samples_by_key(read_wds(split_urls(made.dataset_dir, made.manifest, "train")))
    assert set(samples) == {"a_b", "c"}
    assert samples["a_b"]["png"] == (root / "train" / "cat" / "a.b.png").read_bytes()


def test_same_input_gives_identical_bytes(
    tiny_imagenet: Path, create: CreateRun, tmp_path: Path
) -> None:
    first = create(
        tiny_imagenet, "--shards-dir", str(tmp_path / "one"), torrent=tmp_path / "one.torrent"
    )
    second = create(
        tiny_imagenet, "--shards-dir", str(tmp_path / "two"), torrent=tmp_path / "two.torrent"
    )
    assert first.infohash == second.infohash
    assert first.torrent.read_bytes() == second.torrent.read_bytes()

    def contents(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): sha256_of(p)
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    one, two = contents(first.dataset_dir), contents(second.dataset_dir)
    assert len([k for k in one if k.endswith(".tar")]) >= 2
    assert one == two
