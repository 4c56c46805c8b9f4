#!/usr/bin/env python3
"""Daemon throughput with every video on the local tier against the same corpus behind a slow
HTTP tier (download hidden behind compute: target ratio >= 0.9), and the cache-hit path.

usage: tiers_vs_local.py CORPUS_DIR [--vsieve BIN] [--workers 2] [--download-threads 4]
                         [--repeat N] [--delay S] [--rate BYTES_PER_S] [--runs LIST]

Every video under CORPUS_DIR (recursively) becomes rows of bucket "bench"; --repeat N lists each
file N times under distinct keys (symlinks), so no row is a cache hit by accident. Runs, each
with a fresh SQLite store and `vsieve run --until-idle` at the same --workers:

  paths      no [[tiers]]: rows carry absolute paths (LocalReader). Works on every build.
  local      [[tiers]] kind = "local", root = <work>/mount/{bucket}: read in place.
  http-cold  [[tiers]] kind = "http" in front of bench/slow_http_server.py (--delay s before each
             response, --rate bytes/s per connection), with an empty disk cache: every video is
             downloaded while earlier ones are analysed.
  http-warm  the same rows again with the cache now holding every video: the cache-hit path.

Prints videos/s per run and the ratios http-cold/local (the overlap target, >= 0.9) and
http-warm/local. The local and http runs need a vsieve built with the tier factory (branch
storage-tiers); on a build without it they are reported as skipped. The [[tiers]] keys written
here follow DESIGN.md (kind, name, root, base_url); check them against etc/vsieve.example.toml
after the merge.
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
HERE = os.path.dirname(os.path.abspath(__file__))


class Skipped(Exception):
    pass


def run_child(cmd):
    """Runs cmd; returns seconds. Raises Skipped when the config has keys this build lacks."""
    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err)
        seconds = time.monotonic() - start
        err.seek(0)
        log = err.read().decode(errors="replace")
    if proc.returncode != 0:
        if "unknown key" in log and "tiers" in log:
            raise Skipped("this vsieve has no [[tiers]] (merge storage-tiers)")
        sys.exit(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}):\n{log[-3000:]}")
    for line in log.splitlines():
        if "mean ms per video" in line:
            print("    daemon " + line.split("run: ", 1)[-1])
    return seconds


def write_config(path, work, tiers, cache_bytes):
    with open(path, "w") as out:
        out.write("[cache]\n")
        out.write(f"dir = {json.dumps(os.path.join(work, 'cache'))}\n")
        out.write(f"max_bytes = {cache_bytes}\n")
        for tier in tiers:
            out.write("\n[[tiers]]\n")
            for key, value in tier.items():
                out.write(f"{key} = {json.dumps(value)}\n")


def daemon_run(args, name, rows, work, config):
    db = os.path.join(work, f"{name}.db")
    for suffix in ("", "-wal", "-shm", ".owner"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    rows_file = os.path.join(work, f"{name}.jsonl")
    with open(rows_file, "w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    store = "sqlite://" + db
    run_child([args.vsieve, "import", "--store", store, rows_file])
    cmd = [args.vsieve, "run", "--store", store, "--until-idle", "--workers", str(args.workers),
           "--instances", str(args.workers), "--download-threads", str(args.download_threads),
           "--log-level", "info"]
    if config:
        cmd += ["--config", config]
    seconds = run_child(cmd)
    failed = subprocess.run([args.vsieve, "status", "--store", store, "--json"],
                            capture_output=True, text=True)
    try:
        states = json.loads(failed.stdout).get("by_state", {})
    except json.JSONDecodeError:
        states = {}
    if states.get("failed"):
        print(f"    warning: {states['failed']} rows failed in run {name}")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--vsieve", default=os.path.join(os.path.dirname(HERE),
                                                         "build/release/vsieve"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--download-threads", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds before each response")
    parser.add_argument("--rate", type=float, default=4e6, help="bytes/s per connection (0: any)")
    parser.add_argument("--runs", default="paths,local,http-cold,http-warm")
    args = parser.parse_args()
    args.vsieve = os.path.abspath(args.vsieve)
    runs = args.runs.split(",")

    files = sorted(os.path.join(d, f) for d, _, names in os.walk(args.corpus) for f in names
                   if f.lower().endswith(VIDEO_EXT))
    if not files:
        sys.exit(f"no videos under {args.corpus}")
    work = tempfile.mkdtemp(prefix="vsieve-tiers-bench-")
    server = None
    try:
        # <work>/mount/bench/<i>-<name>: the local tier's folder and the HTTP server's root.
        bucket_dir = os.path.join(work, "mount", "bench")
        os.makedirs(bucket_dir)
        keys, total_bytes = [], 0
        for r in range(max(1, args.repeat)):
            for i, path in enumerate(files):
                key = f"{r}-{i}-{os.path.basename(path)}"
                os.symlink(os.path.abspath(path), os.path.join(bucket_dir, key))
                keys.append((key, os.path.abspath(path)))
                total_bytes += os.path.getsize(path)
        cache_bytes = int(total_bytes * 1.2) + (64 << 20)
        print(f"{len(keys)} videos, {total_bytes / 1e6:.1f} MB, from {args.corpus}; "
              f"{args.workers} workers, {args.download_threads} download threads; http tier: "
              f"{args.delay:.2f} s to first byte, {args.rate / 1e6:.1f} MB/s per connection")
        object_rows = [{"video_id": f"v{n}", "oss_bucket": "bench", "video_path": key,
                        "video_tag": "", "info": {"use_alluxio": True}}
                       for n, (key, _) in enumerate(keys)]
        rates = {}

        def record(name, seconds):
            rates[name] = len(keys) / seconds
            print(f"  {name:<10} {rates[name]:7.2f} videos/s  ({seconds:.1f} s)", flush=True)

        if "paths" in runs:
            rows = [{"video_id": f"v{n}", "oss_bucket": "", "video_path": path, "video_tag": "",
                     "info": {}} for n, (_, path) in enumerate(keys)]
            record("paths", daemon_run(args, "paths", rows, work, None))
        if "local" in runs:
            config = os.path.join(work, "local.toml")
            write_config(config, work, [{"kind": "local", "name": "mount",
                                         "root": os.path.join(work, "mount", "{bucket}")}],
                         cache_bytes)
            try:
                record("local", daemon_run(args, "local", object_rows, work, config))
            except Skipped as why:
                print(f"  local      skipped: {why}")
        if "http-cold" in runs or "http-warm" in runs:
            server = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "slow_http_server.py"),
                 os.path.join(work, "mount"), "--delay", str(args.delay), "--rate",
                 str(args.rate)], stdout=subprocess.PIPE, text=True)
            port = server.stdout.readline().strip().rsplit(":", 1)[-1]
            config = os.path.join(work, "http.toml")
            write_config(config, work, [{"kind": "http", "name": "slowcache",
                                         "base_url": f"http://127.0.0.1:{port}/{{bucket}}"}],
                         cache_bytes)
            shutil.rmtree(os.path.join(work, "cache"), ignore_errors=True)
            try:
                if "http-cold" in runs:
                    record("http-cold", daemon_run(args, "http-cold", object_rows, work, config))
                if "http-warm" in runs:
                    if "http-cold" not in runs:
                        daemon_run(args, "http-fill", object_rows, work, config)
                    record("http-warm", daemon_run(args, "http-warm", object_rows, work, config))
            except Skipped as why:
                print(f"  http       skipped: {why}")
        base = rates.get("local") or rates.get("paths")
        base_name = "local" if "local" in rates else "paths"
        for name in ("http-cold", "http-warm"):
            if name in rates and base:
                print(f"  ratio {name}/{base_name} = {rates[name] / base:.2f}"
                      + ("  (target >= 0.9)" if name == "http-cold" else ""))
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
