#!/usr/bin/env python3
"""Daemon memory soak: resident memory of `vsieve run` over many videos, text detector on.

usage: soak_rss.py [CLIPS...] [--videos N] [--workers W] [--vsieve BIN] [--run-args ARGS]

Imports N rows into a fresh SQLite store, each pointing at one of a few short clips (reused many
times as different rows; without CLIPS, three 2-second 640x360 clips with moving content and
burned-in text are made with ffmpeg), runs `vsieve run --until-idle --workers W`, and samples the
process's VmRSS at every progress line the daemon logs (every 10 s) and at the end. Prints the
samples against rows finished, then the verdict: the highest RSS in the last quarter of the
samples taken after 10 % of the rows (warm-up: models loaded, pools and arenas grown) against the
highest in the first quarter. Flat means within +-5 %.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def make_clips(work):
    clips = []
    sources = ["mandelbrot=size=640x360:rate=25", "testsrc=size=640x360:rate=25",
               "cellauto=size=640x360:rate=25:rule=30"]
    for i, src in enumerate(sources):
        path = os.path.join(work, f"soak{i}.mp4")
        text = (f"drawtext=fontfile={FONT}:text='subtitle line {i}':fontsize=26:"
                "fontcolor=white:borderw=2:x=(w-text_w)/2:y=h-60")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", src, "-t", "2", "-vf", text, "-c:v", "libx264", "-preset",
                        "veryfast", "-pix_fmt", "yuv420p", path], check=True)
        clips.append(path)
    return clips


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*")
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vsieve", default=os.path.join(ROOT, "build/release/vsieve"))
    parser.add_argument("--run-args", default="", help="extra flags for `vsieve run`")
    opts = parser.parse_args()
    vsieve = os.path.abspath(opts.vsieve)
    work = tempfile.mkdtemp(prefix="vsieve-soak-")
    try:
        clips = [os.path.abspath(c) for c in opts.clips] or make_clips(work)
        db = os.path.join(work, "soak.db")
        rows = os.path.join(work, "rows.jsonl")
        with open(rows, "w") as out:
            for i in range(opts.videos):
                out.write(json.dumps({"video_id": f"soak{i}", "oss_bucket": "",
                                      "video_path": clips[i % len(clips)], "video_tag": "",
                                      "info": {}}) + "\n")
        store = "sqlite://" + db
        subprocess.run([vsieve, "import", "--store", store, rows], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cmd = [vsieve, "run", "--store", store, "--until-idle", "--workers", str(opts.workers),
               "--instances", str(opts.workers), "--log-level", "info"] + opts.run_args.split()
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples = []  # (seconds, rows finished, RSS MiB)
        progress = re.compile(r"run: (\d+) done, (\d+) failed")
        last_rss = [None]

        def poll():  # RSS every 0.5 s, so the last reading before exit is close to the end
            while proc.poll() is None:
                value = rss_mib(proc.pid)
                if value is not None:
                    last_rss[0] = value
                time.sleep(0.5)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        failed = 0
        for line in proc.stderr:
            match = progress.search(line)
            if match:
                done, failed = int(match.group(1)), int(match.group(2))
                value = rss_mib(proc.pid)
                if value is not None:
                    samples.append((time.monotonic() - start, done + failed, value))
                    print(f"  {samples[-1][0]:7.0f} s {done + failed:6d} rows {value:7.1f} MiB",
                          flush=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            sys.exit(f"vsieve run exited {code}")
        if last_rss[0] is not None:
            samples.append((seconds, opts.videos, last_rss[0]))
        print(f"{opts.videos} videos ({len(clips)} clips reused), {opts.workers} workers, "
              f"{seconds:.0f} s, {opts.videos / seconds:.2f} videos/s, {failed} failed, "
              f"peak RSS {usage.ru_maxrss / 1024.0:.1f} MiB")
        # One sample says more about the videos in flight at that moment than about a leak:
        # compare the highest RSS of the first and the last quarter of the samples after warm-up.
        warm = [s for s in samples if s[1] >= 0.1 * opts.videos]
        quarter = len(warm) // 4
        if quarter >= 1:
            first, last = warm[:quarter], warm[-quarter:]
            a = max(s[2] for s in first)
            b = max(s[2] for s in last)
            change = (b - a) / a * 100.0
            verdict = "flat" if abs(change) <= 5.0 else "NOT flat"
            print(f"highest RSS over rows {first[0][1]}-{first[-1][1]}: {a:.1f} MiB, over rows "
                  f"{last[0][1]}-{last[-1][1]}: {b:.1f} MiB: {change:+.1f} % ({verdict}, target "
                  "+-5 %)")
        else:
            print("too few samples after warm-up for a verdict (run more videos)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
