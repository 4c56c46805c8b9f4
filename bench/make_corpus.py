#!/usr/bin/env python3
"""Generates the labelled development corpus: short clips made with ffmpeg's lavfi sources and
filters, where the truth is known by construction, and truth.json beside them.

usage: make_corpus.py OUT_DIR [--seed N] [--duration S]

truth.json maps each file name to:
  "crop":  [x, y, w, h] the clean area in displayed pixels (whole frame when nothing is abnormal)
  "heads": {"head_name": "expected label"} for the heads whose answer the construction fixes
  "what":  a short description

The content sources vary with --seed (pattern, colours, text, positions), so a detector tuned to
one corpus does not pass by memorising it.
"""
import argparse
import json
import os
import random
import subprocess
import sys

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def ffmpeg(args):
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"] + args
    subprocess.run(cmd, check=True)


def encode(out, vf=None, extra_in=None, duration=8, fps=25, src=None, size="640x360"):
    """Encodes `src` (a lavfi source) through `vf` into H.264 at `out`."""
    args = []
    if extra_in:
        args += extra_in
    args += ["-f", "lavfi", "-i", src or f"testsrc2=size={size}:rate={fps}", "-t", str(duration)]
    if vf:
        args += ["-filter_complex" if ";" in vf or "[" in vf else "-vf", vf]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", out]
    ffmpeg(args)


def natural_source(rng, size, fps):
    """A moving, textured picture whose parts move independently (not one rigid motion), with
    no burned-in text: the Game of Life, a scrolling cellular automaton, or testsrc2 below its
    timecode with the camera drifting over it."""
    kind = rng.choice(["life", "cellauto", "testsrc2"])
    w, h = (int(v) for v in size.split("x"))
    if kind == "life":
        return (f"life=size={w}x{h}:rate={fps}:mold=10:ratio={rng.uniform(0.1, 0.5):.2f}:"
                f"death_color=#{rng.randrange(0x202020, 0x808080):06x}:"
                f"life_color=#{rng.randrange(0x808080, 0xffffff):06x}")
    if kind == "cellauto":
        return f"cellauto=size={size}:rate={fps}:rule={rng.choice([18, 30, 110])}:scroll=1"
    big_w, big_h = 2 * w + 64, 2 * h + 160
    return (f"testsrc2=size={big_w}x{big_h}:rate={fps},"
            f"crop={w}:{h}:x='mod(t*{rng.randrange(20, 60)}\\,{w})':y={h // 2 + 100}")


def still_image(out_png, rng, size):
    # No testsrc2 here: its burned-in timecode is text the crop rightly avoids.
    src = rng.choice([f"mandelbrot=size={size}:start_scale={rng.uniform(0.5, 3):.2f}",
                      f"smptehdbars=size={size}",
                      f"cellauto=size={size}:rule={rng.choice([18, 30, 110])}"])
    ffmpeg(["-f", "lavfi", "-i", src, "-frames:v", "1", out_png])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8.0)
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    os.makedirs(opts.out, exist_ok=True)
    d = opts.duration
    truth = {}

    def clip(name, what, crop, heads, **kw):
        path = os.path.join(opts.out, name)
        encode(path, duration=d, **kw)
        truth[name] = {"crop": crop, "heads": heads, "what": what}
        print(f"  {name}: {what}", file=sys.stderr)

    normal = {"vfx_filter": "normal_video", "simcam_filter": "normal_video",
              "rotate_vertical_filter": "normal_video", "low_quality_filter": "normal_video"}

    # Clean content.
    for i in range(2):
        src = natural_source(rng, "640x360", 25)
        clip(f"clean_{i}.mp4", f"clean moving content ({src.split('=')[0]})", [0, 0, 640, 360],
             normal, src=src)

    # Letterbox and pillarbox with random bar sizes.
    bar = rng.randrange(30, 70) & ~1
    src = natural_source(rng, f"640x{360 - 2 * bar}", 25)
    clip("letterbox.mp4", f"letterbox {bar} px", [0, bar, 640, 360 - 2 * bar],
         {"vfx_filter": "normal_video"}, src=src, vf=f"pad=640:360:0:{bar}:black")
    bar = rng.randrange(60, 120) & ~1
    src = natural_source(rng, f"{640 - 2 * bar}x360", 25)
    clip("pillarbox.mp4", f"pillarbox {bar} px", [bar, 0, 640 - 2 * bar, 360],
         {"vfx_filter": "normal_video"}, src=src, vf=f"pad=640:360:{bar}:0:black")

    # Portrait video over a blurred, enlarged copy of itself (blur fill).
    fg_w = 202
    src = natural_source(rng, "360x640", 25)
    clip("blur_fill.mp4", "portrait over blurred fill", [(640 - fg_w) // 2, 0, fg_w, 360],
         {"rotate_vertical_filter": "vertical_screen_video"}, src=src,
         vf=("split[a][b];[a]scale=640:360:force_original_aspect_ratio=increase,crop=640:360,"
             f"gblur=sigma=25[bg];[b]scale={fg_w}:360[fg];[bg][fg]overlay=(W-w)/2:0"))

    # Burned-in subtitles: changing text lines at the bottom.
    words = ["the quick brown fox", "jumps over the dog", "hello and welcome", "see you later",
             "this is a subtitle", "another line here"]
    rng.shuffle(words)
    per = d / 4
    draws = ",".join(
        f"drawtext=fontfile={FONT}:text='{words[k]}':fontsize=26:fontcolor=white:borderw=2:"
        f"x=(w-text_w)/2:y=h-60:enable='between(t,{k * per:.2f},{(k + 1) * per - 0.05:.2f})'"
        for k in range(4))
    src = natural_source(rng, "640x360", 25)
    clip("subtitles.mp4", "burned-in subtitles at the bottom", [0, 0, 640, 290],
         {"vfx_filter": "normal_video"}, src=src, vf=draws)

    # Static watermark (a logo: box plus text) over moving content, in a random corner.
    corner = rng.choice(["tl", "tr", "br"])
    lx = 20 if corner == "tl" else 640 - 20 - 120
    ly = 20 if corner in ("tl", "tr") else 360 - 20 - 40
    src = natural_source(rng, "640x360", 25)
    logo = (f"drawbox=x={lx}:y={ly}:w=120:h=40:color=white@0.6:t=fill,"
            f"drawtext=fontfile={FONT}:text='LOGO':fontsize=26:fontcolor=black@0.8:"
            f"x={lx + 25}:y={ly + 8}")
    if corner == "tl":
        crop = [0, ly + 40, 640, 360 - ly - 40]
    elif corner == "tr":
        crop = [0, ly + 40, 640, 360 - ly - 40]
    else:
        crop = [0, 0, 640, ly]
    clip("watermark.mp4", f"static logo {corner}", crop, {"vfx_filter": "normal_video"},
         src=src, vf=logo)

    # A still picture: frozen video, and the same picture panned/zoomed (simulated camera).
    png = os.path.join(opts.out, "still.png")
    still_image(png, rng, "640x360")
    for name, vf, label in [
        ("static.mp4", None, "static_video"),
        ("zoompan.mp4", f"scale=1280:720,zoompan=z='min(zoom+0.0015,1.5)':d={int(25 * d)}:"
                        "x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s=640x360:fps=25",
         "simulated_camera_video"),
        ("pan.mp4", "scale=1280:720,crop=640:360:x='t*60':y='t*20'", "simulated_camera_video"),
    ]:
        args = ["-loop", "1", "-framerate", "25", "-i", png, "-t", str(d)]
        if vf:
            args += ["-vf", vf]
        path = os.path.join(opts.out, name)
        ffmpeg(args + ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", path])
        truth[name] = {"crop": [0, 0, 640, 360], "heads": {"simcam_filter": label},
                       "what": label}
        print(f"  {name}: {label}", file=sys.stderr)
    os.remove(png)

    # Rotated content: text lines turned on their side.
    text = (f"drawtext=fontfile={FONT}:text='ROTATED CONTENT':fontsize=40:fontcolor=white:"
            "borderw=3:x=(w-text_w)/2:y=h/2-60,"
            f"drawtext=fontfile={FONT}:text='reading sideways':fontsize=34:fontcolor=yellow:"
            "borderw=3:x=(w-text_w)/2:y=h/2+20")
    src = natural_source(rng, "640x360", 25)
    clip("rotated.mp4", "content with text rotated 90 degrees", None,
         {"rotate_vertical_filter": "rotated_video"}, src=src,
         vf=f"{text},transpose=1,scale=360:640")
    truth["rotated.mp4"]["crop"] = None

    # Flashes and inversions.
    period = rng.uniform(0.3, 0.6)
    src = natural_source(rng, "640x360", 25)
    clip("vfx_strobe.mp4", f"inversion strobe every {period:.2f} s", [0, 0, 640, 360],
         {"vfx_filter": "VFX_video"}, src=src,
         vf=f"negate=enable='lt(mod(t\\,{period:.2f})\\,{period / 2:.2f})'")
    src = natural_source(rng, "640x360", 25)
    clip("vfx_flash.mp4", "white flashes", [0, 0, 640, 360], {"vfx_filter": "VFX_video"},
         src=src, vf="eq=brightness='if(lt(mod(t\\,0.8)\\,0.16)\\,0.8\\,0)':eval=frame")

    # Low quality: blur, noise, blocking, tiny resolution.
    src = natural_source(rng, "640x360", 25)
    clip("lq_blur.mp4", "heavy blur", [0, 0, 640, 360],
         {"low_quality_filter": "low_quality_video"}, src=src, vf="gblur=sigma=6")
    src = natural_source(rng, "640x360", 25)
    clip("lq_noise.mp4", "heavy noise", [0, 0, 640, 360],
         {"low_quality_filter": "low_quality_video"}, src=src, vf="noise=alls=70:allf=t")
    src = natural_source(rng, "640x360", 25)
    clip("lq_blocky.mp4", "8x8 blocking", [0, 0, 640, 360],
         {"low_quality_filter": "low_quality_video"}, src=src,
         vf="scale=80:45,scale=640:360:flags=neighbor")
    src = natural_source(rng, "160x90", 25)
    clip("lq_tiny.mp4", "160x90", [0, 0, 160, 90],
         {"low_quality_filter": "low_quality_video"}, src=src)

    with open(os.path.join(opts.out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1, sort_keys=True)
    print(f"wrote {len(truth)} clips and truth.json to {opts.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
