#!/usr/bin/env python3
"""`vsieve annotate` with one device against two weighted devices, and `vsieve frames --fps 1`
against `ffmpeg -vf fps=1`, in one run.

usage: annotate_frames_bench.py [--vsieve BIN] [--clip PATH]... [--seconds S] [--size WxH]
                                [--detector DIR] [--every N] [--weights A,B] [--rounds R]

Clips: the --clip files given, else one generated with ffmpeg lavfi (moving testsrc2, a
keyframe every second, an AAC tone) of --seconds (default 20) at --size (default 640x360).
Detector: YOLOX-nano from DIR (default ../shared/assets/models/yolox-nano) when it is there,
else annotate runs without [[detectors]] (the overlay and the re-encode alone; said in the
output).
  1. annotate: `vsieve annotate CLIP -o OUT --every N` with [devices] list = ["cpu:0"] and with
     list = ["cpu:0", "cpu:1"], weights = [A, B] (default 2,1): the summary's fps (frames
     written / time of the segments and the join; the filter run before them is reported apart
     as filter_seconds) and the wall time of the process;
  2. frames: `vsieve frames CLIP --fps 1 --out D` against `ffmpeg -i CLIP -vf fps=1 D/%06d.png`
     (wall time of each process; both write PNG at OpenCV's / FFmpeg's default compression).
The sides alternate for --rounds rounds (default 3) and each side's best is kept, as the
machine is shared. Prints a table and the ratios (two devices / one; vsieve / ffmpeg).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def timed(cmd):
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def write_config(path, devices, weights, detector_dir):
    lines = ["[devices]", "list = " + json.dumps(devices)]
    if weights:
        lines.append("weights = " + json.dumps(weights))
    lines += ["[filter]", "text_regions = false"]
    if detector_dir:
        lines += ["[[detectors]]", 'name = "yolox"', 'kind = "yolox"',
                  f'model = "{os.path.join(detector_dir, "yolox_nano.onnx")}"',
                  f'classes = "{os.path.join(detector_dir, "coco_classes.txt")}"']
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


def count_files(folder, suffix):
    return sum(1 for name in os.listdir(folder) if name.endswith(suffix))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vsieve", default=os.path.join(ROOT, "build/release/vsieve"))
    parser.add_argument("--clip", action="append", default=[])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--detector",
                        default=os.path.join(ROOT, "../shared/assets/models/yolox-nano"))
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--weights", default="2,1")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    vsieve = os.path.abspath(args.vsieve)
    weights = [float(w) for w in args.weights.split(",")]
    detector = args.detector if os.path.exists(
        os.path.join(args.detector, "yolox_nano.onnx")) else ""

    work = tempfile.mkdtemp(prefix="vsieve-annotate-bench-")
    try:
        clips = [os.path.abspath(c) for c in args.clip]
        if not clips:
            clip = os.path.join(work, "clip.mp4")
            ffmpeg("-f", "lavfi", "-i",
                   f"testsrc2=size={args.size}:rate=25:duration={args.seconds}",
                   "-f", "lavfi", "-i", f"sine=frequency=440:duration={args.seconds}",
                   "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p",
                   "-c:a", "aac", "-shortest", clip)
            clips = [clip]
        one = os.path.join(work, "one.toml")
        two = os.path.join(work, "two.toml")
        write_config(one, ["cpu:0"], [], detector)
        write_config(two, [f"cpu:{i}" for i in range(len(weights))], weights, detector)

        best = {}
        def keep(key, value):
            best[key] = min(best.get(key, float("inf")), value)

        frames_written = {}
        for _ in range(args.rounds):
            for clip in clips:
                name = os.path.basename(clip)
                for side, config in (("one", one), ("two", two)):
                    out = os.path.join(work, f"{side}.mp4")
                    wall, stdout = timed([vsieve, "annotate", clip, "-o", out, "--config", config,
                                          "--every", str(args.every), "--log-level", "error"])
                    summary = json.loads(stdout)
                    frames_written[name] = summary["frames"]
                    keep((name, side, "annotate_s"), summary["annotate_seconds"])
                    keep((name, side, "wall_s"), wall)
                    keep((name, side, "filter_s"), summary["filter_seconds"])
                    os.remove(out)
                for side in ("vsieve", "ffmpeg"):
                    folder = os.path.join(work, f"frames-{side}")
                    shutil.rmtree(folder, ignore_errors=True)
                    os.makedirs(folder)
                    if side == "vsieve":
                        wall, _ = timed([vsieve, "frames", clip, "--fps", "1", "--out", folder,
                                         "--log-level", "error"])
                    else:
                        wall, _ = timed(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                                         "-i", clip, "-vf", "fps=1",
                                         os.path.join(folder, "%06d.png")])
                    keep((name, side, "frames_s"), wall)
                    best[(name, side, "images")] = count_files(folder, ".png")

        print(f"detector: {'yolox-nano (' + detector + ')' if detector else 'none'}; "
              f"every {args.every}; weights {weights}; best of {args.rounds} rounds, "
              f"sides interleaved; {os.cpu_count()} CPUs")
        print()
        print("| clip | frames | 1 device fps | 2 devices fps | ratio | 1 device wall s | "
              "2 devices wall s | filter s |")
        print("|---|---|---|---|---|---|---|---|")
        for clip in clips:
            name = os.path.basename(clip)
            n = frames_written[name]
            f1 = n / best[(name, "one", "annotate_s")]
            f2 = n / best[(name, "two", "annotate_s")]
            print(f"| {name} | {n} | {f1:.1f} | {f2:.1f} | {f2 / f1:.2f} | "
                  f"{best[(name, 'one', 'wall_s')]:.2f} | {best[(name, 'two', 'wall_s')]:.2f} | "
                  f"{best[(name, 'one', 'filter_s')]:.2f} |")
        print()
        print("| clip | vsieve frames --fps 1 s | images | ffmpeg -vf fps=1 s | images | "
              "vsieve / ffmpeg |")
        print("|---|---|---|---|---|---|")
        for clip in clips:
            name = os.path.basename(clip)
            v = best[(name, "vsieve", "frames_s")]
            f = best[(name, "ffmpeg", "frames_s")]
            print(f"| {name} | {v:.2f} | {best[(name, 'vsieve', 'images')]} | {f:.2f} | "
                  f"{best[(name, 'ffmpeg', 'images')]} | {v / f:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
