#!/usr/bin/env python3
"""Daemon throughput against `vsieve probe` on the same files.

usage: daemon_vs_probe.py CORPUS_DIR [--vsieve BIN] [--workers 1,2] [--repeat N] [--memory]

For each W in --workers, in one run: `vsieve probe --jobs W` over every video of CORPUS_DIR
(bench/make_corpus.py's output), then `vsieve import` of the same files into a fresh SQLite store
and `vsieve run --until-idle --workers W`. Prints videos/s for both, the ratio daemon/probe
(target >= 0.9) and each process's peak RSS (ru_maxrss of the child). --repeat N lists every
file N times (as N distinct rows) for a longer, steadier run.

--memory adds a leak check: the daemon's peak RSS over 200 tiny clips (160x120, 1 s, copies of one
clip, text detector off) against 2,000 of them; a steady pipeline keeps the two close.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

VIDEO_EXT = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".ts", ".flv")


def run_child(cmd):
    """Runs cmd; returns (seconds, peak RSS MiB of this child alone)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        log = err.read().decode(errors="replace")
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}):\n{log[-3000:]}")
    # The daemon's closing summary: mean ms per stage and peak queue depths.
    for line in log.splitlines():
        if "mean ms per video" in line:
            print("    daemon " + line.split("run: ", 1)[-1])
    return seconds, usage.ru_maxrss / 1024.0


def daemon_run(vsieve, files, workers, work, extra=()):
    """Imports `files` into a fresh store under `work` and runs the daemon until idle."""
    db = os.path.join(work, f"bench-{workers}-{len(files)}.db")
    for suffix in ("", "-wal", "-shm", ".owner"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    rows = os.path.join(work, "rows.jsonl")
    with open(rows, "w") as out:
        for i, path in enumerate(files):
            out.write(json.dumps({"video_id": f"v{i}", "oss_bucket": "", "video_path": path,
                                  "video_tag": "", "info": {}}) + "\n")
    store = "sqlite://" + db
    run_child([vsieve, "import", "--store", store, rows])
    seconds, rss = run_child([vsieve, "run", "--store", store, "--until-idle", "--workers",
                              str(workers), "--instances", str(workers), "--log-level", "info",
                              *extra])
    return seconds, rss


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--vsieve", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build/release/vsieve"))
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--run-args", default="",
                        help="extra flags for `vsieve run`, e.g. '--decode-threads 2'")
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()

    vsieve = os.path.abspath(args.vsieve)
    files = sorted(os.path.abspath(os.path.join(args.corpus, name))
                   for name in os.listdir(args.corpus) if name.lower().endswith(VIDEO_EXT))
    if not files:
        sys.exit(f"no videos in {args.corpus} (make one with bench/make_corpus.py DIR)")
    files = files * max(1, args.repeat)
    work = tempfile.mkdtemp(prefix="vsieve-bench-")
    try:
        print(f"{len(files)} videos from {args.corpus}")
        print(f"{'W':>2} {'probe v/s':>10} {'daemon v/s':>11} {'ratio':>6} "
              f"{'probe RSS':>10} {'daemon RSS':>11}")
        for workers in [int(w) for w in args.workers.split(",")]:
            probe_s, probe_rss = run_child([vsieve, "probe", "--jobs", str(workers), *files])
            daemon_s, daemon_rss = daemon_run(vsieve, files, workers, work, args.run_args.split())
            probe_rate = len(files) / probe_s
            daemon_rate = len(files) / daemon_s
            print(f"{workers:>2} {probe_rate:>10.2f} {daemon_rate:>11.2f} "
                  f"{daemon_rate / probe_rate:>6.2f} {probe_rss:>8.0f}Mi {daemon_rss:>9.0f}Mi",
                  flush=True)
        if args.memory:
            clips = os.path.join(work, "clips")
            os.makedirs(clips)
            source = os.path.join(clips, "source.mp4")
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                            "-i", "testsrc=size=160x120:rate=10", "-t", "1", "-pix_fmt",
                            "yuv420p", source], check=True)
            tiny = []
            for i in range(2000):
                path = os.path.join(clips, f"c{i}.mp4")
                shutil.copyfile(source, path)
                tiny.append(path)
            # --no-text keeps the 2,200 videos to a few minutes; the text detector's memory is
            # allocated once per instance either way.
            _, rss_200 = daemon_run(vsieve, tiny[:200], 2, work, ["--no-text"])
            _, rss_2000 = daemon_run(vsieve, tiny, 2, work, ["--no-text"])
            print(f"memory: peak RSS after 200 tiny videos {rss_200:.0f} MiB, after 2000 "
                  f"{rss_2000:.0f} MiB (growth {rss_2000 - rss_200:+.0f} MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
