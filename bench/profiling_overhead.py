#!/usr/bin/env python3
"""What profiling costs `vsieve run`: plain against --trace/--stage-csv and --core-bind.

usage: profiling_overhead.py CORPUS_DIR [--vsieve BIN] [--rounds N] [--repeat N] [--workers W]

Each round runs `vsieve run --until-idle` over every video of CORPUS_DIR (any folder of videos,
e.g. bench/make_corpus.py's output; --repeat N lists each file N times) once per variant, in
rotating order, each on a fresh SQLite store:

  plain       no profiling flags
  trace       --trace FILE --stage-csv FILE
  core-bind   --core-bind (auto)

and prints per variant the median wall seconds, videos/s and CPU seconds (user + sys of the
child), with the ratio to plain. CPU seconds are steadier than wall time on a shared machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

VIDEO_EXT = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".ts", ".flv", ".mpeg", ".ogv")


def run_child(cmd):
    """Runs cmd; returns (wall seconds, cpu seconds)."""
    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd[:3])} ... failed:\n{err.read().decode(errors='replace')[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--vsieve", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build/release/vsieve"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--run-args", default="", help="extra flags for every `vsieve run`")
    args = parser.parse_args()

    vsieve = os.path.abspath(args.vsieve)
    files = []
    for root, _, names in os.walk(args.corpus):
        files += [os.path.abspath(os.path.join(root, n)) for n in sorted(names)
                  if n.lower().endswith(VIDEO_EXT)]
    files = sorted(files) * args.repeat
    if not files:
        sys.exit(f"no videos under {args.corpus}")

    with tempfile.TemporaryDirectory() as work:
        rows = os.path.join(work, "rows.jsonl")
        with open(rows, "w") as out:
            for i, path in enumerate(files):
                out.write(json.dumps({"video_id": f"v{i}", "video_path": path}) + "\n")
        variants = {
            "plain": [],
            "trace": ["--trace", os.path.join(work, "trace.json"),
                      "--stage-csv", os.path.join(work, "stages.csv")],
            "core-bind": ["--core-bind"],
        }
        names = list(variants)
        results = {name: [] for name in names}
        for round_index in range(args.rounds):
            order = names[round_index % len(names):] + names[:round_index % len(names)]
            for name in order:
                db = os.path.join(work, f"{name}-{round_index}.db")
                store = "sqlite://" + db
                run_child([vsieve, "import", "--store", store, rows])
                wall, cpu = run_child([vsieve, "run", "--store", store, "--until-idle",
                                       "--workers", str(args.workers), *args.run_args.split(),
                                       *variants[name]])
                results[name].append((wall, cpu))
                print(f"  round {round_index + 1} {name:9s} {wall:7.2f} s wall "
                      f"{len(files) / wall:6.2f} videos/s {cpu:7.2f} s cpu", flush=True)
            if round_index == 0:
                size = os.path.getsize(os.path.join(work, "trace.json"))
                print(f"  trace.json: {size / 1024:.0f} KiB for {len(files)} videos")

    base_wall = statistics.median(w for w, _ in results["plain"])
    base_cpu = statistics.median(c for _, c in results["plain"])
    print(f"{len(files)} videos, {args.workers} workers, {args.rounds} rounds (medians):")
    for name in names:
        wall = statistics.median(w for w, _ in results[name])
        cpu = statistics.median(c for _, c in results[name])
        print(f"  {name:9s} {wall:7.2f} s wall ({wall / base_wall:5.3f}x) "
              f"{len(files) / wall:6.2f} videos/s  {cpu:7.2f} s cpu ({cpu / base_cpu:5.3f}x)")


if __name__ == "__main__":
    main()
