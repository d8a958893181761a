"""Healing throughput against the emulator's own ceiling, measured in the same run.

    python -m benchmarks.heal_throughput [--objects 1000] [--repeat 3]

The baseline is the emulator doing the restores' work with no healer in the loop: one client
writing the same objects back with PutObject as fast as it can (what the healer does per key,
minus everything around it). Then the same number of objects is deleted and the pipeline heals
them. Machines here are noisy, so the result is the ratio healed/s ÷ baseline/s (the median of
``--repeat`` rounds), plus peak memory of the emulator and the runtime's process tree. Written
to reports/benchmarks/heal-throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from provisioning.emulators import EmbeddedEmulator
from provisioning.observe import delete_keys, wait_for_heal
from provisioning.pipeline import Pipeline
from provisioning.stack import StackNames


def _rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, from /proc (Linux)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(entry) != pid and int(fields[1]) != pid:
                continue
            with open(f"/proc/{entry}/status") as handle:
                total += next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    return total / 1024


def one_round(emulator: EmbeddedEmulator, objects: int) -> dict[str, float]:
    pipeline = Pipeline.up(
        emulator.target,
        StackNames.from_prefix(f"bench-{uuid.uuid4().hex[:8]}"),
        runs_lambda=False,
        objects=objects,
        sweep_every_s=0,
    )
    try:
        s3 = pipeline.target.s3()
        bodies = {
            item.key: s3.get_object(Bucket=pipeline.names.backup_bucket, Key=item.key)["Body"].read()
            for item in pipeline.seeded
        }
        scratch = f"{pipeline.names.prefix}-scratch"
        s3.create_bucket(Bucket=scratch)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:  # as many writers as the runtime has environments
            list(pool.map(lambda key: s3.put_object(Bucket=scratch, Key=key, Body=bodies[key]), bodies))
        baseline_per_s = objects / (time.perf_counter() - started)

        expected = {item.key: item for item in pipeline.seeded}
        started = time.perf_counter()
        sent_at = delete_keys(s3, pipeline.names.production_bucket, list(expected), batch=True)
        report = wait_for_heal(s3, pipeline.names.production_bucket, expected, sent_at, timeout_s=600)
        healed_per_s = report.healed / max(report.summary()["max_s"] or 0.0, 1e-9)
        assert not report.lost, f"{len(report.lost)} objects lost"
        return {
            "baseline_put_per_s": baseline_per_s,
            "healed_per_s": healed_per_s,
            "ratio": healed_per_s / baseline_per_s,
            "p50_s": report.summary()["p50_s"],
            "p99_s": report.summary()["p99_s"],
            "emulator_rss_mib": _rss_mib(emulator.pid) if emulator.pid else 0.0,
            "runtime_rss_mib": _rss_mib(os.getpid()),
        }
    finally:
        pipeline.down(destroy=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.heal_throughput")
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("reports/benchmarks/heal-throughput.json"))
    args = parser.parse_args()
    if args.objects <= 0 or args.repeat <= 0:
        parser.error("--objects and --repeat must be positive")
    with EmbeddedEmulator() as emulator:
        rounds = [one_round(emulator, args.objects) for _ in range(args.repeat)]
    result = {
        "benchmark": "heal-throughput",
        "objects": args.objects,
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "median_healed_per_s": statistics.median(r["healed_per_s"] for r in rounds),
        "median_baseline_put_per_s": statistics.median(r["baseline_put_per_s"] for r in rounds),
        "peak_emulator_rss_mib": max(r["emulator_rss_mib"] for r in rounds),
        "peak_runtime_rss_mib": max(r["runtime_rss_mib"] for r in rounds),
        "cores": os.cpu_count(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))


if __name__ == "__main__":
    main()
