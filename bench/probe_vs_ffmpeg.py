#!/usr/bin/env python3
"""Times `vsieve probe` against FFmpeg over the same files, in the same run.

usage: probe_vs_ffmpeg.py DIR_OR_FILES... [--vsieve BIN] [--jobs N] [--repeat K]

Three measurements per repetition, each over every file:
  probe     one `vsieve probe --jobs N FILES...` (the whole filter: decode, regions, crop, heads)
  decode    `ffmpeg -threads 2 -i F -an -f null -` per file (FFmpeg's plain full decode)
  analysis  `ffmpeg -threads 2 -i F -an -vf cropdetect,blackdetect,freezedetect,blurdetect,
            blockdetect -f null -` per file (FFmpeg's analysis chain)
Prints the best wall time of each over the repetitions, their ratios, and peak RSS.
The target is probe/decode <= 1.0.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VIDEO_EXT = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".ogv", ".mpg", ".mpeg", ".ts")


def run(cmd):
    """Runs cmd, returns (wall seconds, peak RSS in MiB, exit code)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    return wall, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def collect(args):
    files = []
    for arg in args:
        if os.path.isdir(arg):
            for dirpath, _, names in os.walk(arg):
                files += [os.path.join(dirpath, n) for n in names if n.endswith(VIDEO_EXT)]
        else:
            files.append(arg)
    return sorted(files)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--vsieve", default=os.path.join(ROOT, "build/release/vsieve"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    opts = parser.parse_args()
    files = collect(opts.inputs)
    if not files:
        sys.exit("no video files found")
    total_bytes = sum(os.path.getsize(f) for f in files)
    print(f"{len(files)} files, {total_bytes / 1e6:.1f} MB, vsieve --jobs {opts.jobs}, "
          f"best of {opts.repeat}")

    chain = "cropdetect,blackdetect,freezedetect,blurdetect,blockdetect"
    best = {"probe": float("inf"), "decode": float("inf"), "analysis": float("inf")}
    peak = {"probe": 0.0, "decode": 0.0, "analysis": 0.0}
    for rep in range(opts.repeat):
        wall, rss, code = run([opts.vsieve, "probe", "--jobs", str(opts.jobs)] + files)
        if code != 0:
            sys.exit(f"vsieve probe exited {code}")
        best["probe"] = min(best["probe"], wall)
        peak["probe"] = max(peak["probe"], rss)
        for name, extra in (("decode", []), ("analysis", ["-vf", chain])):
            total = 0.0
            for f in files:
                wall, rss, _ = run(["ffmpeg", "-hide_banner", "-nostdin", "-threads", "2", "-i", f,
                                    "-an"] + extra + ["-f", "null", "-"])
                total += wall
                peak[name] = max(peak[name], rss)
            best[name] = min(best[name], total)
        print(f"  repetition {rep + 1}: probe {best['probe']:.2f} s, decode {best['decode']:.2f} s,"
              f" analysis {best['analysis']:.2f} s (best so far)")

    print()
    print(f"{'':10s} {'wall s':>8s} {'videos/s':>9s} {'peak RSS MiB':>13s}")
    for name in ("probe", "decode", "analysis"):
        print(f"{name:10s} {best[name]:8.2f} {len(files) / best[name]:9.2f} {peak[name]:13.1f}")
    print()
    print(f"probe / full decode        = {best['probe'] / best['decode']:.2f}  (target <= 1.0)")
    print(f"probe / analysis chain     = {best['probe'] / best['analysis']:.2f}")
    print(f"analysis chain / decode    = {best['analysis'] / best['decode']:.2f}")


if __name__ == "__main__":
    main()
