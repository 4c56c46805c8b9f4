#!/usr/bin/env python3
"""Times `vsieve probe` against FFmpeg over the same files, in the same run.

usage: probe_vs_ffmpeg.py DIR_OR_FILES... [--vsieve BIN] [--base BIN] [--jobs N] [--repeat K]
                          [--daemon] [--no-chain] [--no-breakdown]

Measurements per repetition (interleaved, so that a loaded machine slows them alike), each over
every file:
  probe     one `vsieve probe --jobs N FILES...` (the whole filter: decode, regions, crop, heads)
  base      the same with --base BIN (an older build), when given
  daemon    `vsieve import` into a fresh SQLite store, then `vsieve run --until-idle --workers N`
            (with --daemon; also for --base)
  decode    `ffmpeg -threads 2 -i F -an -f null -` per file (FFmpeg's plain full decode)
  analysis  `ffmpeg -threads 2 -i F -an -vf cropdetect,blackdetect,freezedetect,blurdetect,
            blockdetect -f null -` per file (FFmpeg's analysis chain; skipped with --no-chain)
Prints the best wall time of each over the repetitions, their ratios, the CPU time (user +
system, best repetition; steadier than wall time on a machine other jobs load) and peak RSS
(ru_maxrss).
The targets (issue 15) are probe/decode <= 0.7, daemon within 10 % of probe, probe RSS <= 200 MiB.

Then, unless --no-breakdown, where the time goes: one more `probe --jobs 1 --trace` per binary,
its spans summed per stage (decode, regions, heads) and per cue (region:<detector>,
head:<head>) in CPU-thread milliseconds per video. Builds without the per-cue spans show the
stages only.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VIDEO_EXT = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".ogv", ".mpg", ".mpeg", ".ts")


CPU = {}  # the CPU seconds (user + system) of the last run() of each command name


def run(cmd):
    """Runs cmd, returns (wall seconds, peak RSS in MiB, exit code); CPU[cmd[0]] = CPU seconds."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    CPU[cmd[0]] = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def collect(args):
    files = []
    for arg in args:
        if os.path.isdir(arg):
            for dirpath, _, names in os.walk(arg):
                files += [os.path.join(dirpath, n) for n in names if n.endswith(VIDEO_EXT)]
        else:
            files.append(arg)
    return sorted(os.path.abspath(f) for f in files)


def daemon_run(vsieve, files, workers, work):
    """Imports `files` into a fresh store and runs the daemon until idle: (wall, RSS, code)."""
    db = os.path.join(work, "bench.db")
    for suffix in ("", "-wal", "-shm", ".owner"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    rows = os.path.join(work, "rows.jsonl")
    with open(rows, "w") as out:
        for i, path in enumerate(files):
            out.write(json.dumps({"video_id": f"v{i}", "oss_bucket": "", "video_path": path,
                                  "video_tag": "", "info": {}}) + "\n")
    store = "sqlite://" + db
    _, _, code = run([vsieve, "import", "--store", store, rows])
    if code != 0:
        return 0.0, 0.0, code
    return run([vsieve, "run", "--store", store, "--until-idle", "--workers", str(workers),
                "--instances", str(workers)])


def breakdown(vsieve, files, work):
    """Per-stage and per-cue span totals of one traced `probe --jobs 1`, in ms per video."""
    trace = os.path.join(work, "trace.json")
    rows = os.path.join(work, "rows.jsonl")
    with open(rows, "w") as out:
        code = subprocess.run([vsieve, "probe", "--jobs", "1", "--trace", trace] + files,
                              stdout=out, stderr=subprocess.DEVNULL).returncode
    if code != 0:
        return None
    with open(trace) as f:
        text = f.read()
    if not text.rstrip().endswith("}"):
        text = text.rstrip().rstrip(",") + "]}"
    totals = collections.defaultdict(float)
    for event in json.loads(text)["traceEvents"]:
        if event.get("ph") == "X":
            totals[event["name"]] += event["dur"] / 1000.0
    return {name: ms / len(files) for name, ms in totals.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--vsieve", default=os.path.join(ROOT, "build/release/vsieve"))
    parser.add_argument("--base", help="an older vsieve build, timed beside --vsieve")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--daemon", action="store_true", help="also time `run --until-idle`")
    parser.add_argument("--no-chain", action="store_true", help="skip FFmpeg's analysis chain")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the traced runs")
    opts = parser.parse_args()
    files = collect(opts.inputs)
    if not files:
        sys.exit("no video files found")
    total_bytes = sum(os.path.getsize(f) for f in files)
    print(f"{len(files)} files, {total_bytes / 1e6:.1f} MB, vsieve --jobs {opts.jobs}, "
          f"best of {opts.repeat}")

    binaries = [("probe", os.path.abspath(opts.vsieve))]
    if opts.base:
        binaries.append(("base", os.path.abspath(opts.base)))
    chain = "cropdetect,blackdetect,freezedetect,blurdetect,blockdetect"
    ffmpeg_runs = [("decode", [])] + ([] if opts.no_chain else [("analysis", ["-vf", chain])])
    names = []
    for name, _ in binaries:
        names.append(name)
        if opts.daemon:
            names.append(name.replace("probe", "daemon") if name == "probe" else f"{name}-daemon")
    names += [name for name, _ in ffmpeg_runs]
    best = {name: float("inf") for name in names}
    cpu = {name: float("inf") for name in names}
    peak = {name: 0.0 for name in names}
    work = tempfile.mkdtemp(prefix="vsieve-speed-")
    for rep in range(opts.repeat):
        for name, binary in binaries:
            wall, rss, code = run([binary, "probe", "--jobs", str(opts.jobs)] + files)
            if code != 0:
                sys.exit(f"{binary} probe exited {code}")
            best[name] = min(best[name], wall)
            cpu[name] = min(cpu[name], CPU[binary])
            peak[name] = max(peak[name], rss)
            if opts.daemon:
                dname = "daemon" if name == "probe" else f"{name}-daemon"
                wall, rss, code = daemon_run(binary, files, opts.jobs, work)
                if code != 0:
                    sys.exit(f"{binary} run exited {code}")
                best[dname] = min(best[dname], wall)
                cpu[dname] = min(cpu[dname], CPU[binary])
                peak[dname] = max(peak[dname], rss)
        for name, extra in ffmpeg_runs:
            total = 0.0
            total_cpu = 0.0
            for f in files:
                wall, rss, _ = run(["ffmpeg", "-hide_banner", "-nostdin", "-threads", "2", "-i", f,
                                    "-an"] + extra + ["-f", "null", "-"])
                total += wall
                total_cpu += CPU["ffmpeg"]
                peak[name] = max(peak[name], rss)
            best[name] = min(best[name], total)
            cpu[name] = min(cpu[name], total_cpu)
        print(f"  repetition {rep + 1}: " +
              ", ".join(f"{n} {best[n]:.2f} s" for n in names) + " (best so far)", flush=True)

    print()
    print(f"{'':12s} {'wall s':>8s} {'videos/s':>9s} {'/ decode':>9s} {'CPU s':>8s} "
          f"{'CPU / decode':>13s} {'peak RSS MiB':>13s}")
    for name in names:
        print(f"{name:12s} {best[name]:8.2f} {len(files) / best[name]:9.2f} "
              f"{best[name] / best['decode']:9.2f} {cpu[name]:8.2f} "
              f"{cpu[name] / cpu['decode']:13.2f} {peak[name]:13.1f}")
    print()
    print(f"probe / full decode        = {best['probe'] / best['decode']:.2f}  (target <= 0.7)")
    if opts.daemon:
        print(f"daemon / probe (wall)      = {best['daemon'] / best['probe']:.2f}  (target <= 1.1)")
    if opts.base:
        print(f"probe / base (wall)        = {best['probe'] / best['base']:.2f}")
    if not opts.no_chain:
        print(f"probe / analysis chain     = {best['probe'] / best['analysis']:.2f}")
        print(f"analysis chain / decode    = {best['analysis'] / best['decode']:.2f}")

    if not opts.no_breakdown:
        spans = {name: breakdown(binary, files, work) for name, binary in binaries}
        keys = sorted({k for s in spans.values() if s for k in s},
                      key=lambda k: (k.count(":"), k.split(":")[0], k))
        print()
        print("where the time goes: ms per video, one traced `probe --jobs 1` each")
        print(f"{'span':34s}" + "".join(f"{name:>10s}" for name, _ in binaries))
        for key in keys:
            print(f"{key:34s}" + "".join(
                f"{spans[name].get(key, 0.0):10.1f}" if spans[name] else f"{'failed':>10s}"
                for name, _ in binaries))
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
