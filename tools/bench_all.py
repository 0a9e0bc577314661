#!/usr/bin/env python3
"""Runs every benchmark in turn and writes one dated summary: `make bench-all`.

Usage: python3 tools/bench_all.py [TARGET ...]   (default: every bench target, bench-envoy last)

Each target runs as `make -s TARGET` with cargo quiet, so its log holds what the benchmark
printed. A failing target does not stop the others; the script exits non-zero if any failed.
Logs and the summary go to target/bench-all/<date>/ (summary.md: one row per target with its
exit status and time, then each target's figures as it printed them).
"""
import datetime
import os
import subprocess
import sys
import time

# Cheapest first; bench-envoy last, since it measures the whole shipped shape.
TARGETS = ["bench-native", "bench-wasm", "bench-web", "bench-watermark", "bench-scale", "bench-envoy"]

# Lines a build or installer prints around the figures.
NOISE = ("Compiling ", "Finished ", "Running ", "Downloaded ", "Downloading ", "Updating ",
         "Executable ", "Blocking ", "Locking ", "Adding ", "Installing ", "Installed ")


def git(*args):
    out = subprocess.run(["git", *args], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def cpu():
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "unknown CPU")
    except OSError:
        model = "unknown CPU"
    return f"{model}, {os.cpu_count()} cores"


def run(target, log_path):
    env = dict(os.environ, CARGO_TERM_QUIET="true")
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["make", "-s", target], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env, text=True, errors="replace")
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        code = proc.wait()
    return code, time.monotonic() - start


def figures(log_path):
    with open(log_path, errors="replace") as f:
        lines = [l.rstrip() for l in f]
    kept = [l for l in lines if not l.strip().startswith(NOISE)]
    while kept and not kept[0].strip():
        kept.pop(0)
    return kept


def main():
    targets = sys.argv[1:] or TARGETS
    day = datetime.date.today().isoformat()
    out_dir = os.path.join("target", "bench-all", day)
    os.makedirs(out_dir, exist_ok=True)
    results = []
    for target in targets:
        print(f"\n===== make {target}", flush=True)
        log_path = os.path.join(out_dir, f"{target}.log")
        code, seconds = run(target, log_path)
        results.append((target, code, seconds, log_path))

    summary = os.path.join(out_dir, "summary.md")
    with open(summary, "w") as out:
        out.write(f"# aigc-edge benchmarks, {day}\n\n")
        out.write(f"commit {git('rev-parse', '--short', 'HEAD')} ({git('log', '-1', '--format=%cs %s')})  \n")
        out.write(f"{cpu()}; figures beside baselines measured in the same run (this kind of machine: +-15%)\n\n")
        out.write("| benchmark | exit | minutes | log |\n|---|---|---|---|\n")
        for target, code, seconds, log_path in results:
            status = "ok" if code == 0 else f"FAILED ({code})"
            out.write(f"| make {target} | {status} | {seconds / 60:.1f} | {os.path.basename(log_path)} |\n")
        for target, code, _, log_path in results:
            out.write(f"\n## make {target}\n\n```\n")
            out.write("\n".join(figures(log_path)))
            out.write("\n```\n")
    print(f"\nsummary: {summary}")
    with open(summary) as f:
        table = f.read().split("\n## make ")[0]
    print(table)
    failed = [t for t, code, _, _ in results if code != 0]
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
