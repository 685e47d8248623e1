"""Data-parallel scaling: training images/s at 1, 2 (and N) processes, the same global batch, one run each.

Each process count trains the same config through the command line, as a user would: one process with
``python -m cnndash train``, N processes with ``torchrun --standalone --nproc-per-node N -m cnndash train``.
The throughput is the run's own ``images_per_sec`` (training time only: no start-up, no validation), so the
ratio is what DDP buys per epoch. On the CPU the machine's cores are shared out: N processes get cores / N
torch threads each, so every row uses the same hardware; one process is also measured with a single thread
(small models often run faster that way than with all cores), and the ratio is against the best one-process
row, so it says what the extra processes buy over the best single-process setting.

    python benchmarks/ddp_scaling.py                        # CPU, 1 and 2 processes, LeNet on digits
    python benchmarks/ddp_scaling.py --device cuda          # 1, 2, … up to every visible GPU
    python benchmarks/ddp_scaling.py --dataset shapes:count=4000,size=64 --model simplecnn --batch-size 256

Prints one line per process count with images/s, the ratio against one process, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402


def run(processes: int, threads: int, args: argparse.Namespace, out: Path) -> tuple[dict, float]:
    train = ["-m", "cnndash", "train", "--dataset", args.dataset, "--model", args.model, "--epochs",
             str(args.epochs), "--batch-size", str(args.batch_size), "--device", args.device, "--out", str(out),
             "--no-tensorboard"]  # fmt: skip
    if processes == 1:
        command = [sys.executable, *train]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                   str(processes), *train]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if args.device == "cpu":
        env["OMP_NUM_THREADS"] = str(threads)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{result.stderr[-3000:]}")
    return json.loads((out / "summary.json").read_text()), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch, the same for every row")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--processes", default="", help="comma-separated counts (default: 1,2 on CPU; 1..GPUs)"
    )
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)), help="CPU cores to share")
    args = parser.parse_args()
    if args.processes:
        counts = [int(n) for n in args.processes.split(",")]
    elif args.device == "cuda":
        counts = sorted({1, 2, torch.cuda.device_count()} - {0})
        counts = [n for n in counts if n <= torch.cuda.device_count()]
    else:
        counts = [1, 2]
    what = (
        f"{args.model} on {args.dataset}, global batch {args.batch_size}, {args.epochs} epochs, {args.device}"
    )
    cores = f", {args.cores} cores shared out" if args.device == "cpu" else ""
    print(f"{what}{cores} · torch {torch.__version__}")
    rows = [(n, max(1, args.cores // n)) for n in counts]
    if args.device == "cpu" and 1 in counts and args.cores > 1:
        rows.insert(1, (1, 1))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, threads in rows:
            summary, wall = run(n, threads, args, Path(tmp) / f"p{n}t{threads}")
            results.append((n, threads, summary["images_per_sec"], summary["val_accuracy"], wall))
    base = max((rate for n, _, rate, _, _ in results if n == 1), default=results[0][2])
    print(f"{'processes':>9}  {'threads':>7}  {'images/s':>9}  {'ratio':>6}  {'val acc':>7}  {'wall s':>7}")
    for n, threads, rate, acc, wall in results:
        threads_text = str(threads) if args.device == "cpu" else "-"
        print(f"{n:>9}  {threads_text:>7}  {rate:>9.0f}  {rate / base:>5.2f}x  {acc:>7.3f}  {wall:>7.1f}")
    print("ratio: images/s against the best one-process row")


if __name__ == "__main__":
    main()
