#!/usr/bin/python3
"""What micro-batching does to `vsieve run` throughput with a configured ONNX head.

usage: /usr/bin/python3 bench/batching_bench.py [--vsieve BIN] [--videos N] [--rounds N]
           [--workers W] [--instances I] [--frames T] [--size S] [--builtin on|off]
           [--only NAMES] [--clips DIR]

Run it with Debian's python3 (python3-onnx and numpy write the head). It writes:

  * a head: NCHW [N,3,S,S] -> [N,2], four 3x3 convolutions (stride 2; 32, 64, 128, 256
    channels, ReLU), global average pooling and a linear layer; random weights (seed 0). With
    layout NCHW, mode "clip" and frames T, each video gives T items (frames) per head call;
  * N clips of 4 s at 320x240 (ffmpeg lavfi testsrc2, mandelbrot, life, cellauto, by turns);

then, per round and in rotating order, runs `vsieve run --until-idle` over the N videos on a
fresh SQLite store once per variant ([batching] and [devices] settings):

  single        max_batch = 1                       one frame per forward pass
  per_video     max_batch = T,  max_delay_ms = 0    one video's frames per pass
  cross_video   max_batch = 4T, max_delay_ms = 20   passes of up to 4 videos' frames
  single_isolated, cross_isolated                   the same with isolate = true: the head in a
                                                    child process (seed 003)

Every variant runs the same filter (text detection off; the built-in heads on, or off with
--builtin off so that the ONNX head is most of the work) with W workers
and I head instances (default 1: all workers share one instance, as with one accelerator).
Prints per variant the median wall seconds, videos/s and CPU seconds (user + sys of the daemon
and its model children), with ratios to `single`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    sys.exit("needs Debian's python3-onnx and python3-numpy: run with /usr/bin/python3")


def write_head(path, size):
    """A small CNN classifier over one frame: 4 conv layers, pooling, a linear layer."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    channels = [3, 32, 64, 128, 256]
    current = "input"
    for i in range(4):
        cin, cout = channels[i], channels[i + 1]
        w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        b = np.zeros(cout, dtype=np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Conv", [current, f"w{i}", f"b{i}"], [f"c{i}"],
                                      kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        current = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [current], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], axis=1))
    fc = (rng.standard_normal((2, 256)) * 0.05).astype(np.float32)
    inits += [numpy_helper.from_array(fc, "fc"),
              numpy_helper.from_array(np.zeros(2, dtype=np.float32), "fcb")]
    nodes.append(helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes, "bench_head",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)


def write_clips(folder, count):
    sources = ["testsrc2=size=320x240:rate=25", "mandelbrot=size=320x240:rate=25",
               "life=size=320x240:rate=25:mold=10", "cellauto=size=320x240:rate=25"]
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"clip{i:03d}.mp4")
        if not os.path.exists(path):
            source = sources[i % len(sources)]
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                            "-i", source, "-ss", str(i % 7), "-t", "4", "-c:v", "libx264",
                            "-pix_fmt", "yuv420p", path], check=True)
        paths.append(path)
    return paths


def run_child(cmd):
    """Runs cmd; returns (wall seconds, cpu seconds of it and its children)."""
    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        before = os.times()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        proc.wait()
        wall = time.monotonic() - start
        after = os.times()
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd[:3])} ... failed:\n"
                     f"{err.read().decode(errors='replace')[-3000:]}")
    # The daemon and, through it, its model children (reaped by the daemon, which is reaped here).
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system)
    return wall, cpu


def config_text(store, head, args, batching, isolate):
    max_batch, delay = batching
    builtin = [] if args.builtin else ["vfx = false", "simcam = false", "rotate_vertical = false",
                                       "low_quality = false", "windows = false"]
    return "\n".join([
        "[store]", f'url = "{store}"',
        "[pipeline]", f"workers = {args.workers}", f"decode_threads = {args.workers}",
        "[devices]", f"instances = {args.workers}", f"isolate = {'true' if isolate else 'false'}",
        "[batching]", f"max_batch = {max_batch}", f"max_delay_ms = {delay}",
        "[filter]", "text_regions = false", *builtin,
        "[admin]", 'listen = "off"',
        "[[heads]]", 'name = "bench_head"', 'kind = "onnx"', f'model = "{head}"',
        'layout = "NCHW"', f"frames = {args.frames}", f"size = [{args.size}, {args.size}]",
        'labels = ["a", "b"]', 'mode = "clip"', f"instances = {args.instances}",
        f"batch = {4 * args.frames}", ""])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vsieve", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build/release/vsieve"))
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--clips", help="folder to keep the generated clips in (reused)")
    parser.add_argument("--only", help="comma-separated variants to run")
    parser.add_argument("--builtin", choices=["on", "off"], default="on",
                        help="the built-in heads (off: the ONNX head is most of the work)")
    args = parser.parse_args()
    args.builtin = args.builtin == "on"

    t = args.frames
    variants = {
        "single": ((1, 0), False),
        "per_video": ((t, 0), False),
        "cross_video": ((4 * t, 20), False),
        "single_isolated": ((1, 0), True),
        "cross_isolated": ((4 * t, 20), True),
    }
    if args.only:
        variants = {name: variants[name] for name in args.only.split(",")}
    names = list(variants)
    vsieve = os.path.abspath(args.vsieve)
    with tempfile.TemporaryDirectory() as work:
        clips = args.clips or os.path.join(work, "clips")
        os.makedirs(clips, exist_ok=True)
        files = write_clips(clips, args.videos)
        head = os.path.join(work, "bench_head.onnx")
        write_head(head, args.size)
        rows = os.path.join(work, "rows.jsonl")
        with open(rows, "w") as out:
            for i, path in enumerate(files):
                out.write(json.dumps({"video_id": f"v{i}", "video_path": path}) + "\n")
        results = {name: [] for name in names}
        for round_index in range(args.rounds):
            order = names[round_index % len(names):] + names[:round_index % len(names)]
            for name in order:
                batching, isolate = variants[name]
                store = "sqlite://" + os.path.join(work, f"{name}-{round_index}.db")
                config = os.path.join(work, f"{name}.toml")
                with open(config, "w") as out:
                    out.write(config_text(store, head, args, batching, isolate))
                run_child([vsieve, "import", "--config", config, rows])
                wall, cpu = run_child([vsieve, "run", "--config", config, "--until-idle"])
                done = subprocess.run([vsieve, "status", "--config", config, "--json"],
                                      capture_output=True, text=True, check=True)
                counts = json.loads(done.stdout).get("by_state", {})
                if counts.get("done", 0) != len(files):
                    sys.exit(f"{name}: not every video was done: {done.stdout}")
                results[name].append((wall, cpu))
                print(f"  round {round_index + 1} {name:15s} {wall:7.2f} s wall "
                      f"{len(files) / wall:6.2f} videos/s {cpu:7.2f} s cpu", flush=True)

    base = names[0]
    base_wall = statistics.median(w for w, _ in results[base])
    base_cpu = statistics.median(c for _, c in results[base])
    print(f"{len(files)} videos, {args.workers} workers, {args.instances} head instance(s), "
          f"{t} frames of {args.size}x{args.size} per video, built-in heads "
          f"{'on' if args.builtin else 'off'}, {args.rounds} rounds (medians):")
    for name in names:
        wall = statistics.median(w for w, _ in results[name])
        cpu = statistics.median(c for _, c in results[name])
        print(f"  {name:15s} {wall:7.2f} s wall ({wall / base_wall:5.3f}x) "
              f"{len(files) / wall:6.2f} videos/s  {cpu:7.2f} s cpu ({cpu / base_cpu:5.3f}x)")


if __name__ == "__main__":
    main()
