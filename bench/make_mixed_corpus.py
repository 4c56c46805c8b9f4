#!/usr/bin/env python3
"""Generates a labelled corpus from many kinds of input: ffmpeg's lavfi sources (mandelbrot, life,
cellauto, testsrc, testsrc2, smptehdbars, rgbtestsrc, linear gradients) and real footage from
../shared/assets/videos when present, at several sizes, frame rates and codecs, each clip made
abnormal (or not) in a way whose truth is known by construction.

usage: make_mixed_corpus.py OUT_DIR [--seed N] [--count-per-kind K] [--duration S]
                            [--assets DIR] [--no-real]

Different seeds give different clips (sources, sizes, codecs, positions, strengths). Keep one
seed for tuning and another that you score only once, at the end: that split is the one that
tells how the filter does on input it was not tuned on.

truth.json has the fields of make_corpus.py ("crop", "heads", "what") and "kind" (the clip's
construction: clean, letterbox, pillarbox, blur_fill, vertical_bars, subtitles, watermark,
rotated, low_quality, vfx, static, simcam, dark), which score.py groups crop errors by.
"""
import argparse
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
FONT_REGULAR = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

SIZES = ["640x360", "854x480", "960x540", "1280x720", "640x480", "720x480"]
RATES = [24, 25, 30]
# (encoder arguments, file extension)
CODECS = [
    (["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"], "mp4"),
    (["-c:v", "libx264", "-preset", "fast", "-crf", "24", "-pix_fmt", "yuv420p"], "mkv"),
    (["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"], "avi"),
    (["-c:v", "libx265", "-preset", "ultrafast", "-crf", "24", "-pix_fmt", "yuv420p",
      "-x265-params", "log-level=error"], "mp4"),
    (["-c:v", "mjpeg", "-q:v", "4", "-pix_fmt", "yuvj420p"], "mov"),
]
# Real clips with moving content and no burned-in text, borders or marks (balle-jbart.mp4 is
# left out: it has burned-in captions of its own, which a truth of "clean" would count as errors;
# diver.mov too: hazy underwater footage, soft all over, whose own quality is not clearly normal).
REAL = ["natural/flower.mp4", "natural/bug_video_640.mp4", "natural/car-detection.mp4",
        "natural/vtest.avi",
        "natural/one-by-one-person-detection.mp4", "natural/bottle-detection.mp4",
        "natural/phone_bear_horizontal.mp4", "natural/asl_book.mkv"]


def ffmpeg(args):
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"] + args
    subprocess.run(cmd, check=True)


def dims(size):
    w, h = (int(v) for v in size.split("x"))
    return w, h


def gradient_source(r, w, h, fps, turn):
    """Returns (inputs, chain): a linear ramp between two random colours, its direction turning at
    `turn` radians a second. Drawn with geq: lavfi's own gradients source gives different frames
    on every run, even with a seed, so a split made from it could not be made again."""
    a0 = r.uniform(0, 6.28)
    c1 = [r.randrange(0, 256) for _ in range(3)]
    c2 = [r.randrange(0, 256) for _ in range(3)]
    ramp = (f"clip((X-W/2)*cos({a0:.3f}+{turn:.3f}*T)/W+(Y-H/2)*sin({a0:.3f}+{turn:.3f}*T)/H"
            f"+0.5\\,0\\,1)")
    planes = ":".join(f"{p}='{a}+{b - a}*{ramp}'" for p, a, b in zip("rgb", c1, c2))
    return (["-f", "lavfi", "-i", f"color=black:size={w}x{h}:rate={fps}"],
            f"format=rgb24,geq={planes},format=yuv420p")


class Maker:
    def __init__(self, opts):
        self.rng = random.Random(opts.seed)
        self.out = opts.out
        self.duration = opts.duration
        self.truth = {}
        self.real = []
        if not opts.no_real:
            for rel in REAL:
                path = os.path.join(opts.assets, rel)
                if os.path.exists(path):
                    self.real.append(path)

    # ---- content ----------------------------------------------------------------------------

    def content(self, size, fps, textless=True, moving=True):
        """Returns (inputs, chain, name): ffmpeg input arguments and a filter chain that yields
        `size` at `fps` from a randomly chosen source. textless: no burned-in text."""
        w, h = dims(size)
        kinds = ["mandelbrot", "life", "cellauto", "gradients", "real", "real", "testsrc2_crop",
                 "rgbtestsrc_moving"]
        if not textless:
            kinds += ["testsrc", "testsrc2"]
        if not self.real:
            kinds = [k for k in kinds if k != "real"]
        kind = self.rng.choice(kinds)
        r = self.rng
        if kind == "mandelbrot":
            src = (f"mandelbrot=size={w}x{h}:rate={fps}:start_scale={r.uniform(1.5, 3.5):.2f}:"
                   f"end_scale={r.uniform(0.05, 0.5):.3f}:inner={r.choice(['black', 'period', 'convergence', 'mincol'])}")
            return ["-f", "lavfi", "-i", src], "null", kind
        if kind == "life":
            src = (f"life=size={w}x{h}:rate={fps}:mold={r.randrange(0, 30)}:"
                   f"ratio={r.uniform(0.1, 0.6):.2f}:seed={r.randrange(1 << 30)}:"
                   f"death_color=#{r.randrange(0x000000, 0x606060):06x}:"
                   f"life_color=#{r.randrange(0x808080, 0xffffff):06x}")
            return ["-f", "lavfi", "-i", src], "null", kind
        if kind == "cellauto":
            src = (f"cellauto=size={w}x{h}:rate={fps}:rule={r.choice([18, 30, 45, 73, 105, 110, 150])}:"
                   f"scroll=1:seed={r.randrange(1 << 30)}")
            return ["-f", "lavfi", "-i", src], "null", kind
        if kind == "gradients":
            return gradient_source(r, w, h, fps, r.uniform(0.05, 0.5)) + (kind,)
        if kind == "testsrc2_crop":
            bw, bh = 2 * w + 64, 2 * h + 160
            src = f"testsrc2=size={bw}x{bh}:rate={fps}"
            return (["-f", "lavfi", "-i", src],
                    f"crop={w}:{h}:x='mod(t*{r.randrange(20, 80)}\\,{w})':y={h // 2 + 100}",
                    kind)
        if kind == "rgbtestsrc_moving":
            # A test pattern rolled through the frame: moving, no text.
            src = f"rgbtestsrc=size={w}x{h}:rate={fps}"
            return (["-f", "lavfi", "-i", src],
                    f"scroll=h={r.uniform(0.002, 0.01):.4f}:v={r.uniform(0.0, 0.004):.4f}",
                    kind)
        if kind in ("testsrc", "testsrc2"):
            src = f"{kind}=size={w}x{h}:rate={fps}"
            return ["-f", "lavfi", "-i", src], "null", kind
        path = r.choice(self.real)
        chain = (f"fps={fps},scale={w}:{h}:force_original_aspect_ratio=increase,"
                 f"crop={w}:{h},setsar=1")
        return ["-stream_loop", "-1", "-i", path], chain, "real:" + os.path.basename(path)

    # ---- output -----------------------------------------------------------------------------

    def encode(self, name, inputs, graph, codec=None, extra=None):
        args, ext = codec or self.rng.choice(CODECS)
        path = os.path.join(self.out, f"{name}.{ext}")
        cmd = list(inputs) + ["-t", f"{self.duration:.2f}"]
        if graph:
            cmd += ["-filter_complex", graph, "-map", "[out]"]
        cmd += ["-an"] + args + (extra or []) + [path]
        ffmpeg(cmd)
        return os.path.basename(path)

    def add(self, name, kind, what, crop, heads, inputs, graph, codec=None):
        file = self.encode(name, inputs, graph, codec)
        self.truth[file] = {"crop": crop, "heads": heads, "what": what, "kind": kind}
        print(f"  {file}: {what}", file=sys.stderr)

    def size_fps(self):
        return self.rng.choice(SIZES), self.rng.choice(RATES)

    # ---- clip kinds -------------------------------------------------------------------------

    def clean(self, i):
        size, fps = self.size_fps()
        w, h = dims(size)
        inputs, chain, src = self.content(size, fps)
        self.add(f"clean_{i}", "clean", f"clean {src} {size}@{fps}", [0, 0, w, h],
                 normal_heads(), inputs, f"[0:v]{chain},format=yuv420p[out]")

    def dark(self, i):
        size, fps = self.size_fps()
        w, h = dims(size)
        inputs, chain, src = self.content(size, fps)
        b = self.rng.uniform(-0.45, -0.3)
        self.add(f"dark_{i}", "dark", f"mostly dark {src} {size}", [0, 0, w, h],
                 {"vfx_filter": "normal_video", "rotate_vertical_filter": "normal_video"},
                 inputs, f"[0:v]{chain},eq=brightness={b:.2f}:contrast=1.1,format=yuv420p[out]")

    def bars(self, i, horizontal):
        size, fps = self.size_fps()
        w, h = dims(size)
        colour = self.rng.choice(["black", "#080808", "#101010", "#000000"])
        if horizontal:
            bar = (self.rng.randrange(h // 12, h // 4)) & ~1
            inner = f"{w}x{h - 2 * bar}"
            crop = [0, bar, w, h - 2 * bar]
            pad = f"pad={w}:{h}:0:{bar}:{colour}"
            kind, heads = "letterbox", {"vfx_filter": "normal_video",
                                        "rotate_vertical_filter": "normal_video"}
        else:
            bar = (self.rng.randrange(w // 14, w // 5)) & ~1
            inner = f"{w - 2 * bar}x{h}"
            crop = [bar, 0, w - 2 * bar, h]
            pad = f"pad={w}:{h}:{bar}:0:{colour}"
            kind = "pillarbox"
            aspect = (w - 2 * bar) / h
            heads = {"vfx_filter": "normal_video"}
            if aspect >= 1.0:
                heads["rotate_vertical_filter"] = "normal_video"
        inputs, chain, src = self.content(inner, fps)
        self.add(f"{kind}_{i}", kind, f"{kind} {bar} px {colour} over {src} {size}", crop, heads,
                 inputs, f"[0:v]{chain},{pad},format=yuv420p[out]")

    def vertical(self, i, fill):
        size, fps = self.size_fps()
        w, h = dims(size)
        if w <= h:
            size, w, h = "640x360", 640, 360
        fg_w = (h * 9 // 16 + self.rng.randrange(-10, 30)) & ~1
        x = (w - fg_w) // 2
        inputs, chain, src = self.content(f"{fg_w}x{h}", fps)
        heads = {"rotate_vertical_filter": "vertical_screen_video"}
        if fill == "blur":
            sigma = self.rng.randrange(15, 40)
            graph = (f"[0:v]{chain},split[a][b];"
                     f"[a]scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},"
                     f"gblur=sigma={sigma}[bg];[bg][b]overlay={x}:0,format=yuv420p[out]")
            self.add(f"blur_fill_{i}", "blur_fill", f"portrait {src} over blurred fill {size}",
                     [x, 0, fg_w, h], heads, inputs, graph)
        else:
            graph = f"[0:v]{chain},pad={w}:{h}:{x}:0:black,format=yuv420p[out]"
            self.add(f"vertical_bars_{i}", "vertical_bars", f"portrait {src} pillarboxed {size}",
                     [x, 0, fg_w, h], heads, inputs, graph)

    def subtitles(self, i):
        size, fps = self.size_fps()
        w, h = dims(size)
        words = ["where are you going", "I told you already", "come back tomorrow",
                 "that is not what I meant", "we have to leave now", "look over there",
                 "nobody knows the answer", "it was a long day"]
        self.rng.shuffle(words)
        fs = max(18, h // 16)
        margin = self.rng.randrange(h // 20, h // 8)
        per = self.duration / 4
        colour = self.rng.choice(["white", "yellow", "white"])
        draws = ",".join(
            f"drawtext=fontfile={FONT}:text='{words[k]}':fontsize={fs}:fontcolor={colour}:"
            f"borderw=2:x=(w-text_w)/2:y=h-{margin}-text_h:"
            f"enable='between(t,{k * per:.2f},{(k + 1) * per - 0.1:.2f})'" for k in range(4))
        inputs, chain, src = self.content(size, fps)
        top = h - margin - int(fs * 1.25) - 6
        self.add(f"subtitles_{i}", "subtitles", f"subtitles over {src} {size}", [0, 0, w, top],
                 {"vfx_filter": "normal_video"}, inputs,
                 f"[0:v]{chain},{draws},format=yuv420p[out]")

    def watermark(self, i, still):
        size, fps = self.size_fps()
        w, h = dims(size)
        r = self.rng
        lw, lh = r.randrange(w // 10, w // 5), r.randrange(h // 14, h // 8)
        corner = r.choice(["tl", "tr", "bl", "br"])
        m = r.randrange(10, 30)
        lx = m if corner in ("tl", "bl") else w - m - lw
        ly = m if corner in ("tl", "tr") else h - m - lh
        style = r.choice(["box", "text", "boxtext"])
        fs = max(12, lh * 2 // 3)
        parts = []
        if style in ("box", "boxtext"):
            parts.append(f"drawbox=x={lx}:y={ly}:w={lw}:h={lh}:"
                         f"color={r.choice(['white', 'yellow', 'cyan'])}@{r.uniform(0.4, 0.8):.2f}:t=fill")
        if style in ("text", "boxtext"):
            label = r.choice(["LOGO", "TV", "NEWS", "CH5", "HD"])
            parts.append(f"drawtext=fontfile={FONT}:text='{label}':fontsize={fs}:"
                         f"fontcolor={r.choice(['white', 'black'])}@0.8:borderw=1:"
                         f"x={lx + 4}:y={ly + (lh - fs) // 2}")
        mark = ",".join(parts)
        # The crop keeps the larger clean side: below/above the mark, or beside it.
        if corner in ("tl", "tr"):
            below = [0, ly + lh, w, h - ly - lh]
        else:
            below = [0, 0, w, ly]
        if corner in ("tl", "bl"):
            beside = [lx + lw, 0, w - lx - lw, h]
        else:
            beside = [0, 0, lx, h]
        # Text alone is smaller than its box by an amount the font decides: no crop truth then.
        crop = max(below, beside, key=lambda b: b[2] * b[3]) if style != "text" else None
        if still:
            inputs, chain, src = self.content(size, fps)
            # Mostly still: a frame held, with a slow drift of a few pixels.
            chain = f"{chain},trim=end_frame=1,loop=loop=-1:size=1,setpts=N/{fps}/TB,zoompan=z='1.02+0.0004*on':d=1:s={w}x{h}:fps={fps}"
            what = f"static mark {style} {corner} over a mostly still {src} {size}"
            kind = "watermark_still"
        else:
            inputs, chain, src = self.content(size, fps)
            what = f"static mark {style} {corner} over {src} {size}"
            kind = "watermark"
        self.add(f"{kind}_{i}", "watermark", what, crop, {"vfx_filter": "normal_video"},
                 inputs, f"[0:v]{chain},{mark},format=yuv420p[out]")
        self.truth[list(self.truth)[-1]]["expect_regions"] = ["watermark"]

    def rotated(self, i):
        size, fps = self.size_fps()
        w, h = dims(size)
        r = self.rng
        turn = r.choice(["transpose=1", "transpose=2", "hflip,vflip"])
        inputs, chain, src = self.content(size, fps, textless=False)
        fs = max(20, h // 10)
        lines = [r.choice(["ROTATED CONTENT", "CHANNEL ONE", "TEST PATTERN", "SIGNAL CHECK"]),
                 r.choice(["reading sideways", "please stand by", "broadcast test", "hello world"])]
        text = (f"drawtext=fontfile={FONT}:text='{lines[0]}':fontsize={fs}:fontcolor=white:"
                f"borderw=3:x=(w-text_w)/2:y=h/2-{fs + 10},"
                f"drawtext=fontfile={FONT_REGULAR}:text='{lines[1]}':fontsize={fs * 4 // 5}:"
                f"fontcolor=yellow:borderw=3:x=(w-text_w)/2:y=h/2+10")
        self.add(f"rotated_{i}", "rotated", f"{src} {size} with text, then {turn}", None,
                 {"rotate_vertical_filter": "rotated_video"}, inputs,
                 f"[0:v]{chain},{text},{turn},format=yuv420p[out]")

    def low_quality(self, i):
        size, fps = self.size_fps()
        w, h = dims(size)
        r = self.rng
        how = r.choice(["blur", "noise", "blocky", "upscale", "crf"])
        inputs, chain, src = self.content(size, fps)
        codec = None
        if how == "blur":
            vf = f"gblur=sigma={r.uniform(4, 9):.1f}"
        elif how == "noise":
            vf = f"noise=alls={r.randrange(45, 90)}:allf=t"
        elif how == "blocky":
            f = r.randrange(6, 12)
            vf = f"scale={w // f}:{h // f},scale={w}:{h}:flags=neighbor"
        elif how == "upscale":
            vf = f"scale={w // 4}:{h // 4}:flags=area,scale={w}:{h}:flags=neighbor"
        else:
            vf = "null"
            codec = (["-c:v", "mpeg4", "-q:v", "31", "-pix_fmt", "yuv420p"], "avi")
        self.add(f"lq_{how}_{i}", "low_quality", f"{how} on {src} {size}", [0, 0, w, h],
                 {"low_quality_filter": "low_quality_video"}, inputs,
                 f"[0:v]{chain},{vf},format=yuv420p[out]", codec)

    def vfx(self, i):
        size, fps = self.size_fps()
        w, h = dims(size)
        r = self.rng
        how = r.choice(["strobe", "flash", "psychedelic"])
        inputs, chain, src = self.content(size, fps)
        if how == "strobe":
            p = r.uniform(0.25, 0.6)
            vf = f"negate=enable='lt(mod(t\\,{p:.2f})\\,{p / 2:.2f})'"
        elif how == "flash":
            p = r.uniform(0.6, 1.2)
            vf = f"eq=brightness='if(lt(mod(t\\,{p:.2f})\\,0.16)\\,0.8\\,0)':eval=frame"
        else:
            vf = (f"hue=H='{r.uniform(4, 10):.1f}*t':s='2+sin({r.uniform(5, 12):.1f}*t)',"
                  f"eq=contrast=1.6:saturation=2")
        self.add(f"vfx_{how}_{i}", "vfx", f"{how} over {src} {size}", [0, 0, w, h],
                 {"vfx_filter": "VFX_video"}, inputs,
                 f"[0:v]{chain},{vf},format=yuv420p[out]")

    def still(self, i):
        size, fps = self.size_fps()
        w, h = dims(size)
        r = self.rng
        src = r.choice([f"mandelbrot=size={2 * w}x{2 * h}:start_scale={r.uniform(0.5, 3):.2f}",
                        f"smptehdbars=size={2 * w}x{2 * h}",
                        f"rgbtestsrc=size={2 * w}x{2 * h}",
                        f"cellauto=size={2 * w}x{2 * h}:rule={r.choice([18, 30, 110])}",
                        "gradient"])
        if self.real and r.random() < 0.4:
            png_in = ["-ss", f"{r.uniform(0, 2):.1f}", "-i", r.choice(self.real)]
            png_chain = f"scale={2 * w}:{2 * h}"
            src = "real frame"
        elif src == "gradient":
            png_in, png_chain = gradient_source(r, 2 * w, 2 * h, 25, 0.0)
        else:
            png_in = ["-f", "lavfi", "-i", src]
            png_chain = "null"
        png = os.path.join(self.out, f"still_{i}.png")
        ffmpeg(png_in + ["-frames:v", "1", "-vf", png_chain, png])
        how = r.choice(["static", "zoompan", "pan"])
        n = int(fps * self.duration)
        if how == "static":
            vf, label = f"scale={w}:{h}", "static_video"
        elif how == "zoompan":
            vf = (f"zoompan=z='min(zoom+{r.uniform(0.001, 0.003):.4f},1.6)':d={n}:"
                  f"x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s={w}x{h}:fps={fps}")
            label = "simulated_camera_video"
        else:
            vf = (f"crop={w}:{h}:x='t*{r.randrange(30, 80)}':y='t*{r.randrange(0, 30)}'")
            label = "simulated_camera_video"
        inputs = ["-loop", "1", "-framerate", str(fps), "-i", png]
        self.add(f"{how}_{i}", "static" if how == "static" else "simcam",
                 f"{how} of a still ({src.split('=')[0]}) {size}", [0, 0, w, h],
                 {"simcam_filter": label}, inputs, f"[0:v]{vf},format=yuv420p[out]")
        os.remove(png)


def normal_heads():
    return {"vfx_filter": "normal_video", "rotate_vertical_filter": "normal_video",
            "low_quality_filter": "normal_video"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count-per-kind", type=int, default=3)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--assets", default=os.path.join(ROOT, "..", "shared", "assets", "videos"))
    parser.add_argument("--no-real", action="store_true", help="lavfi sources only")
    opts = parser.parse_args()
    os.makedirs(opts.out, exist_ok=True)
    m = Maker(opts)
    k = opts.count_per_kind
    for i in range(2 * k):
        m.clean(i)
    for i in range(k):
        m.dark(i)
        m.bars(2 * i, True)
        m.bars(2 * i + 1, False)
        m.vertical(2 * i, "blur")
        m.vertical(2 * i + 1, "bars")
        m.subtitles(i)
        m.watermark(2 * i, False)
        m.watermark(2 * i + 1, True)
        m.rotated(i)
        m.low_quality(2 * i)
        m.low_quality(2 * i + 1)
        m.vfx(i)
        m.still(i)
    with open(os.path.join(opts.out, "truth.json"), "w") as f:
        json.dump(m.truth, f, indent=1, sort_keys=True)
    print(f"wrote {len(m.truth)} clips and truth.json to {opts.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
