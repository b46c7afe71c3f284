"""``make demo``: the whole story on this machine, loopback only.

1. generate a small Tiny-ImageNet-shaped dataset;
2. ``torrentds create`` packs it and prints the magnet;
3. ``torrentds seed`` serves it; two ``torrentds get`` peers download it
   (capped at 4 MiB/s so the story is visible), each shard verified on
   arrival, and a trainer (examples/train_webdataset.py) reads peer1's shards
   as they become ready, before the download has finished;
4. ``torrentds verify`` checks a peer's copy offline.

No packet leaves 127.0.0.1: no default trackers, DHT/LSD/UPnP off.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from torrentds.dataset.demo_data import make_tiny_imagenet

CLI = [sys.executable, "-m", "torrentds"]
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_webdataset.py"
ISOLATED = ["--listen", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-upnp", "--json"]


def run(*args: str) -> str:
    print("$ torrentds " + " ".join(args), flush=True)
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.exit(f"demo failed: {done.stderr.strip()}")
    return done.stdout


def echo(name: str, proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"  [{name}] {line.rstrip()}", flush=True)


def follow(name: str, proc: subprocess.Popen[str], port_box: list[int]) -> None:
    """Print the events that tell the story; remember the listen port."""
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        kind = event["event"]
        if kind == "started":
            port_box.append(int(event["listen_port"]))
        elif kind == "shard_ready":
            print(
                f"  [{name}] shard ready: {event['path']} ({event['samples']} samples, "
                f"sha256 {event['sha256'][:12]}…)",
                flush=True,
            )
        elif kind in ("completed", "done", "error", "warning"):
            detail = {
                k: v
                for k, v in event.items()
                if k in ("downloaded", "uploaded", "message", "dataset_dir")
            }
            print(f"  [{name}] {kind} {detail}", flush=True)


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-data").absolute()
    shutil.rmtree(root, ignore_errors=True)
    raw = make_tiny_imagenet(
        root / "tiny-imagenet-200", classes=10, train_per_class=50, val_per_class=10
    )
    print(f"generated {raw}")
    torrent = root / "tiny-imagenet-200.torrent"
    run("create", str(raw), "--no-default-trackers", "--shard-size", "2M", "-o", str(torrent))
    run("info", str(torrent))
    origin = root / "tiny-imagenet-200-wds"

    print("$ torrentds seed … (origin) and 2 × torrentds get … (peers)", flush=True)
    procs: list[subprocess.Popen[str]] = []
    threads = []
    try:
        seeder = subprocess.Popen(
            [*CLI, "seed", str(origin), str(torrent), "--skip-check", *ISOLATED],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(seeder)
        port: list[int] = []
        threads.append(threading.Thread(target=follow, args=("seed", seeder, port)))
        threads[-1].start()
        deadline = time.monotonic() + 30
        while not port and time.monotonic() < deadline:
            time.sleep(0.05)
        if not port:
            sys.exit("demo failed: the seeder did not start")
        trainer = subprocess.Popen(
            [
                sys.executable,
                str(EXAMPLE),
                str(root / "peer1" / "tiny-imagenet-200"),
                "--timeout",
                "120",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(trainer)
        threads.append(threading.Thread(target=echo, args=("trainer", trainer)))
        threads[-1].start()
        for i in (1, 2):
            peer = subprocess.Popen(
                [
                    *CLI,
                    "get",
                    str(torrent),
                    "-d",
                    str(root / f"peer{i}"),
                    "--peer",
                    f"127.0.0.1:{port[0]}",
                    "--seed-hours",
                    "0",
                    "--timeout",
                    "120",
                    "--max-download",
                    "4M",
                    *ISOLATED,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(peer)
            threads.append(threading.Thread(target=follow, args=(f"peer{i}", peer, [])))
            threads[-1].start()
        for peer in procs[2:]:
            if peer.wait(180) != 0:
                sys.exit("demo failed: a peer did not complete")
        if trainer.wait(60) != 0:
            sys.exit("demo failed: the trainer did not finish")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(15)
        for t in threads:
            t.join(5)
    run("verify", str(root / "peer1" / "tiny-imagenet-200"))
    print(f"done: two peers hold verified copies under {root}")


if __name__ == "__main__":
    main()
