#!/usr/bin/env python3
"""Scores `vsieve probe` against a labelled corpus: mean crop IoU and per-head accuracy.

usage: score.py CORPUS_DIR [--vsieve BIN] [--jobs N] [--rows OUT.jsonl]
       score.py --real [ASSETS_VIDEOS_DIR]   (default ../shared/assets/videos with
                                              bench/real_truth.json: facts stated by the assets'
                                              README, not our guesses)

CORPUS_DIR holds the clips and truth.json from make_corpus.py. Prints one line per clip with
what was expected and what came out, then the summary.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def iou(a, b):
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    ix = max(0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def probe(vsieve, paths, jobs):
    out = subprocess.run([vsieve, "probe", "--jobs", str(jobs)] + paths, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?")
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--vsieve", default=os.path.join(ROOT, "build/release/vsieve"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rows", help="also write the probe rows here")
    opts = parser.parse_args()

    if opts.real:
        corpus = opts.corpus or os.path.join(ROOT, "..", "shared", "assets", "videos")
        with open(os.path.join(HERE, "real_truth.json")) as f:
            truth = json.load(f)
    else:
        if not opts.corpus:
            parser.error("CORPUS_DIR is required")
        corpus = opts.corpus
        with open(os.path.join(corpus, "truth.json")) as f:
            truth = json.load(f)
    names = sorted(n for n in truth if os.path.exists(os.path.join(corpus, n)))
    if opts.real:  # every real clip is probed; the truth file covers the ones with known facts
        for dirpath, _, files in os.walk(corpus):
            for f in files:
                rel = os.path.relpath(os.path.join(dirpath, f), corpus)
                if not f.endswith((".vtt", ".md")) and rel not in truth:
                    truth[rel] = {"heads": {}, "what": "no stated truth"}
                    names.append(rel)
        names.sort()
    if not names:
        sys.exit(f"no clips of the truth file found under {corpus}")
    rows = probe(opts.vsieve, [os.path.join(corpus, n) for n in names], opts.jobs)
    if opts.rows:
        with open(opts.rows, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")

    ious, hits, totals, failures = [], {}, {}, 0
    for name, row in zip(names, rows):
        expect = truth[name]
        ri = row["result_info"]
        if ri["succeed"] != "true":
            failures += 1
            print(f"{name:48s} FAILED {ri['error']['code']}: {ri['error']['message']}")
            continue
        info = row["info"]
        notes = []
        crop = expect.get("crop")
        if crop is not None:
            got = info["abnormal_region_crop"]["box"]
            score = iou(crop, got)
            ious.append(score)
            notes.append(f"crop IoU {score:.2f} (want {crop}, got {got})")
        kinds = {r["kind"] for r in info.get("abnormal_region_info", {}).get("regions", [])
                 if r.get("avoid", True)}
        for kind in expect.get("expect_regions", []):
            totals["regions:" + kind] = totals.get("regions:" + kind, 0) + 1
            ok = kind in kinds
            hits["regions:" + kind] = hits.get("regions:" + kind, 0) + int(ok)
            notes.append(f"region {kind} {'found' if ok else 'MISSED'}")
        for head, label in expect.get("heads", {}).items():
            got = info.get(head, {}).get("label")
            totals[head] = totals.get(head, 0) + 1
            ok = got == label
            hits[head] = hits.get(head, 0) + int(ok)
            notes.append(f"{head} {'ok' if ok else 'WRONG'}: want {label}, got {got}")
        if not notes:  # no truth: show what came out
            heads = [info.get(h, {}).get("label", "-") for h in
                     ("vfx_filter", "simcam_filter", "rotate_vertical_filter",
                      "low_quality_filter")]
            notes.append(f"crop {info['abnormal_region_crop']['box']} regions {sorted(kinds)} "
                         f"heads {heads}")
        print(f"{name:48s} " + "; ".join(notes))

    print()
    print(f"clips: {len(names)}, failed rows: {failures}")
    if ious:
        print(f"crop IoU: mean {sum(ious) / len(ious):.3f} over {len(ious)} clips, "
              f"{sum(1 for v in ious if v >= 0.9)} at >= 0.9")
    for head in sorted(totals):
        print(f"{head:26s} accuracy {hits[head]}/{totals[head]} = {hits[head] / totals[head]:.2f}")


if __name__ == "__main__":
    main()
