"""Generate a small Tiny-ImageNet-shaped dataset of real PNG images.

Used by ``make demo``, the tests and the benchmarks, so nothing has to be
downloaded. The content is seeded noise: the same arguments give the same
bytes. Run as ``python -m torrentds.demo_data DIR [--classes N] ...``.
"""

from __future__ import annotations

import argparse
import random
import struct
import zlib
from pathlib import Path


def png_bytes(rng: random.Random, size: int = 64) -> bytes:
    """A valid ``size``×``size`` RGB PNG filled with seeded noise."""
    raw = b"".join(b"\x00" + rng.randbytes(size * 3) for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def make_tiny_imagenet(
    root: Path,
    classes: int = 10,
    train_per_class: int = 50,
    val_per_class: int = 10,
    image_size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``wnids.txt``, ``train/<wnid>/images``, ``val/images`` + annotations."""
    rng = random.Random(seed)
    wnids = [f"n{1440764 + 17 * i:08d}" for i in range(classes)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    for wnid in wnids:
        images = root / "train" / wnid / "images"
        images.mkdir(parents=True, exist_ok=True)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(train_per_class):
            (images / f"{wnid}_{i}.png").write_bytes(png_bytes(rng, image_size))
    val_images = root / "val" / "images"
    val_images.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(classes * val_per_class):
        name = f"val_{i}.png"
        (val_images / name).write_bytes(png_bytes(rng, image_size))
        lines.append(f"{name}\t{wnids[i % classes]}\t0\t0\t{image_size - 1}\t{image_size - 1}\n")
    (root / "val" / "val_annotations.txt").write_text("".join(lines))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--train-per-class", type=int, default=50)
    parser.add_argument("--val-per-class", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    make_tiny_imagenet(
        args.root, args.classes, args.train_per_class, args.val_per_class, args.image_size
    )


if __name__ == "__main__":
    main()
