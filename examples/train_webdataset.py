"""Train on a dataset's shards as they arrive, while ``torrentds get`` still downloads.

    torrentds get tiny-imagenet-200.torrent -d data &
    python examples/train_webdataset.py data/tiny-imagenet-200

It iterates ``torrentds.ready_shards``, which yields each shard once its
pieces and sha256 are verified, reads the samples with webdataset (or the
standard library's tarfile if webdataset is not installed), and takes a
training step per batch: a linear classifier on byte histograms of the
images with PyTorch when it is installed, plain iteration otherwise. It
prints ``shard X: N samples, first label L`` per shard and a final count.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torrentds

Sample = tuple[str, bytes, int]  # key, image bytes, label
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp")


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def read_webdataset(wds: ModuleType, shard: str) -> Iterator[Sample]:
    # One shard at a time, already split by ready_shards: no node/worker split here.
    dataset = wds.WebDataset(
        shard, shardshuffle=False, nodesplitter=None, workersplitter=None, empty_check=False
    )
    for sample in dataset:
        yield _sample(sample["__key__"], sample)


def read_tarfile(shard: str) -> Iterator[Sample]:
    # WebDataset's grouping: consecutive members sharing the name up to the first
    # dot of the base name are one sample. The zero padding is the end marker.
    key: str | None = None
    fields: dict[str, bytes] = {}
    with tarfile.open(shard, "r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            folder, _, base = member.name.rpartition("/")
            stem, _, ext = base.partition(".")
            this = f"{folder}/{stem}" if folder else stem
            if this != key and key is not None:
                yield _sample(key, fields)
                fields = {}
            key = this
            handle = tar.extractfile(member)
            assert handle is not None
            fields[ext.lower()] = handle.read()
    if key is not None:
        yield _sample(key, fields)


def _sample(key: str, fields: dict[str, Any]) -> Sample:
    image = next((fields[e] for e in IMAGE_EXTENSIONS if e in fields), b"")
    return key, image, int(fields["cls"]) if "cls" in fields else -1


class Trainer:
    """A linear classifier on 256-bin byte histograms: small, but a real SGD loop."""

    def __init__(self, torch: ModuleType, classes: int, batch: int = 32) -> None:
        self.torch = torch
        self.model = torch.nn.Linear(256, max(classes, 1))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.batch = batch
        self.pending: list[tuple[Any, int]] = []
        self.last_loss = float("nan")

    def add(self, image: bytes, label: int) -> None:
        if label < 0:
            return
        data = self.torch.frombuffer(bytearray(image), dtype=self.torch.uint8).long()
        hist = self.torch.bincount(data, minlength=256).float()
        self.pending.append((hist / max(len(image), 1), label))
        if len(self.pending) >= self.batch:
            self.step()

    def step(self) -> None:
        if not self.pending:
            return
        x = self.torch.stack([h for h, _ in self.pending])
        y = self.torch.tensor([label for _, label in self.pending])
        self.pending = []
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        self.last_loss = float(loss.item())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_dir", type=Path, help="the dataset folder (DIR/NAME)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--timeout", type=float, default=None, help="longest wait per shard (s)")
    args = parser.parse_args(argv)

    wds = _optional("webdataset")
    torch = _optional("torch")
    read: Callable[[str], Iterator[Sample]] = (
        read_tarfile if wds is None else lambda shard: read_webdataset(wds, shard)
    )
    print(
        f"waiting for {args.split} shards in {args.dataset_dir} "
        f"(reader: {'tarfile' if wds is None else 'webdataset'}, "
        f"training: {'pytorch' if torch is not None else 'none, plain iteration'})",
        flush=True,
    )
    started = time.monotonic()
    trainer: Trainer | None = None
    shards = samples = 0
    try:
        for shard in torrentds.ready_shards(args.dataset_dir, args.split, timeout=args.timeout):
            if torch is not None and trainer is None:
                # Once a shard is ready, the manifest beside it has been verified too.
                doc = json.loads((args.dataset_dir / "torrentds.json").read_text("utf-8"))
                trainer = Trainer(torch, len(doc["classes"]))
            count, first = 0, None
            for _key, image, label in read(shard):
                count += 1
                first = label if first is None else first
                if trainer is not None:
                    trainer.add(image, label)
            shards += 1
            samples += count
            name = Path(shard).relative_to(os.path.abspath(args.dataset_dir)).as_posix()
            loss = f", loss {trainer.last_loss:.3f}" if trainer is not None else ""
            print(f"shard {name}: {count} samples, first label {first}{loss}", flush=True)
    except torrentds.TorrentdsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if trainer is not None:
        trainer.step()
    print(f"done: {samples} samples from {shards} shards in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
