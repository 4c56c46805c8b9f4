#!/usr/bin/env python3
"""The crop stage ([output]) against `ffmpeg -vf crop=... -c:v libx264`, and the daemon with
cropping on and off.

usage: crop_vs_ffmpeg.py [--vsieve BIN] [--clips N] [--seconds S] [--size WxH] [--crf C]
                         [--preset P] [--rounds R] [--skip-daemon]

Makes N letterboxed clips with ffmpeg lavfi (moving testsrc2 with black bars top and bottom, a
sine tone in AAC), then, in one run:
  1. `vsieve probe --no-text --jobs 1 --output DIR` over the clips: each row's
     result_info.stage_ms.encode is the crop stage (decode in full, crop, libx264, mux; the
     in-process time, no process start) and abnormal_region_crop.box the crop;
  2. for each clip, `ffmpeg -i CLIP -vf crop=W:H:X:Y -c:v libx264 -preset P -crf C -c:a copy
     -movflags +faststart OUT.mp4` with the same box (wall time of the process);
  3. unless --skip-daemon, `vsieve run --until-idle` over the clips imported into a fresh SQLite
     store, with [output] url set (cropping on) and without (off): videos/s of each.
Steps 1 and 2 alternate for --rounds rounds (default 3) and each clip's fastest time on each side
is kept, as the machine is shared. Prints the per-clip and total times, the output sizes, and the
ratio crop stage / ffmpeg (target <= 1.05). Both encoders use libav's default thread count and
the same preset and CRF.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def timed(cmd, **kwargs):
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def daemon_rate(vsieve, clips, work, config):
    db = os.path.join(work, "bench.db")
    for suffix in ("", "-wal", "-shm", ".owner"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    rows = os.path.join(work, "rows.jsonl")
    with open(rows, "w") as out:
        for i, path in enumerate(clips):
            out.write(json.dumps({"video_id": f"v{i}", "video_path": path}) + "\n")
    store = "sqlite://" + db
    timed([vsieve, "import", "--store", store, rows])
    seconds, _ = timed([vsieve, "run", "--store", store, "--until-idle", "--no-text",
                        "--config", config, "--log-level", "warn"])
    return len(clips) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vsieve", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build/release/vsieve"))
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-daemon", action="store_true")
    args = parser.parse_args()
    vsieve = os.path.abspath(args.vsieve)
    width, height = (int(v) for v in args.size.split("x"))
    bar = height // 8

    work = tempfile.mkdtemp(prefix="vsieve-crop-bench-")
    try:
        clips = []
        for i in range(args.clips):
            path = os.path.join(work, f"clip{i}.mp4")
            src = (f"testsrc2=size={2 * width + 64}x{2 * height}:rate=25,"
                   f"crop={width}:{height - 2 * bar}:x='t*{20 + 10 * i}':y={height // 2}")
            ffmpeg("-f", "lavfi", "-i", src, "-f", "lavfi", "-i", f"sine=frequency={300 + 50 * i}",
                   "-t", str(args.seconds), "-vf", f"pad={width}:{height}:0:{bar}",
                   "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                   "-c:a", "aac", path)
            clips.append(path)
        config = os.path.join(work, "output.toml")
        with open(config, "w") as out:
            out.write(f"[output]\ncrf = {args.crf}\npreset = \"{args.preset}\"\n"
                      f"temp_dir = \"{os.path.join(work, 'tmp')}\"\n")

        out_dir = os.path.join(work, "vsieve-out")
        ours = [float("inf")] * len(clips)
        theirs = [float("inf")] * len(clips)
        boxes = [None] * len(clips)
        sizes = [(0, 0)] * len(clips)
        for _ in range(max(1, args.rounds)):
            _, stdout = timed([vsieve, "probe", "--no-text", "--jobs", "1", "--config", config,
                               "--output", out_dir, *clips])
            rows = [json.loads(line) for line in stdout.splitlines() if line.strip()]
            for i, row in enumerate(rows):
                crop = row["info"]["abnormal_region_crop"]
                if crop.get("video", {}).get("status") != "written":
                    sys.exit(f"clip {i}: no cropped video: {json.dumps(crop)}")
                boxes[i] = crop["video"]["box"]
                ours[i] = min(ours[i], row["result_info"]["stage_ms"]["encode"] / 1000.0)
            for i, clip in enumerate(clips):
                x, y, w, h = boxes[i]
                out = os.path.join(work, f"ffmpeg{i}.mp4")
                seconds, _ = timed(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i",
                                    clip, "-vf", f"crop={w}:{h}:{x}:{y}", "-c:v", "libx264",
                                    "-preset", args.preset, "-crf", str(args.crf), "-pix_fmt",
                                    "yuv420p", "-c:a", "copy", "-movflags", "+faststart", out])
                theirs[i] = min(theirs[i], seconds)
                sizes[i] = (os.path.getsize(os.path.join(out_dir, f"clip{i}.mp4")),
                            os.path.getsize(out))
        print(f"{len(clips)} clips of {args.seconds} s at {args.size} (bars {bar} px), "
              f"libx264 preset {args.preset}, crf {args.crf}, best of {args.rounds} rounds")
        print(f"{'clip':>6} {'box':>20} {'vsieve s':>9} {'ffmpeg s':>9} {'ratio':>6} "
              f"{'vsieve B':>10} {'ffmpeg B':>10}")
        for i in range(len(clips)):
            print(f"{i:>6} {str(boxes[i]):>20} {ours[i]:>9.2f} {theirs[i]:>9.2f} "
                  f"{ours[i] / theirs[i]:>6.2f} {sizes[i][0]:>10} {sizes[i][1]:>10}")
        print(f"{'total':>6} {'':>20} {sum(ours):>9.2f} {sum(theirs):>9.2f} "
              f"{sum(ours) / sum(theirs):>6.2f}  (target <= 1.05)", flush=True)

        if not args.skip_daemon:
            off = daemon_rate(vsieve, clips, work, config)
            with open(config, "a") as out:
                out.write(f"url = \"file://{os.path.join(work, 'daemon-out')}/\"\n")
            on = daemon_rate(vsieve, clips, work, config)
            print(f"daemon: {off:.2f} videos/s cropping off, {on:.2f} videos/s cropping on "
                  f"({on / off:.2f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
