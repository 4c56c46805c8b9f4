#!/usr/bin/env python3
"""Scores `vsieve probe` against a labelled corpus: mean crop IoU and per-head accuracy.

usage: score.py CORPUS_DIR [--vsieve BIN] [--jobs N] [--rows OUT.jsonl]
       score.py --real [ASSETS_VIDEOS_DIR]   (default ../shared/assets/videos with
                                              bench/real_truth.json: facts stated by the assets'
                                              README, not our guesses)

CORPUS_DIR holds the clips and truth.json from make_corpus.py or make_mixed_corpus.py. Prints one
line per clip with what was expected and what came out, then the summary: the share of clips
whose crop is right (IoU >= 0.95 or every edge within 8 px), the crop errors by kind of clip,
the clean clips (truth: the whole frame) that lose more than 2 % of their area to the crop (a
false crop destroys good video, so it is counted apart), and each head's accuracy and confusion.
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


def crop_right(want, got):
    """IoU >= 0.95, or every edge within 8 px."""
    if iou(want, got) >= 0.95:
        return True
    edges_want = (want[0], want[1], want[0] + want[2], want[1] + want[3])
    edges_got = (got[0], got[1], got[0] + got[2], got[1] + got[3])
    return all(abs(a - b) <= 8 for a, b in zip(edges_want, edges_got))


def kind_of(name, expect):
    if "kind" in expect:
        return expect["kind"]
    base = os.path.basename(name)
    if "/" in name:  # real clips: their folder
        return name.split("/")[0]
    return base.split(".")[0].rstrip("0123456789").rstrip("_")


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
    crop_ok, crop_by_kind, confusion, false_crops, clean = 0, {}, {}, [], 0
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
            right = crop_right(crop, got)
            crop_ok += int(right)
            kind = kind_of(name, expect)
            good, seen = crop_by_kind.get(kind, (0, 0))
            crop_by_kind[kind] = (good + int(right), seen + 1)
            notes.append(f"crop {'ok' if right else 'WRONG'} IoU {score:.2f} "
                         f"(want {crop}, got {got})")
            meta = info.get("video_meta", {})
            if crop == [0, 0, meta.get("width"), meta.get("height")]:  # a clean clip
                clean += 1
                lost = 1.0 - (got[2] * got[3]) / (crop[2] * crop[3])
                if lost > 0.02:
                    false_crops.append((name, lost))
                    notes.append(f"FALSE CROP: {100 * lost:.0f} % of a clean frame lost")
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
            cells = confusion.setdefault(head, {})
            cells[(label, got)] = cells.get((label, got), 0) + 1
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
        print(f"crop right (IoU >= 0.95 or within 8 px): {crop_ok}/{len(ious)} = "
              f"{crop_ok / len(ious):.2f}")
        print("crop right by kind: " + ", ".join(
            f"{k} {g}/{n}" for k, (g, n) in sorted(crop_by_kind.items())))
        print(f"false crops (clean clip loses > 2 % of its area): {len(false_crops)}/{clean}" +
              "".join(f"\n  {n}: {100 * lost:.1f} %" for n, lost in false_crops))
    for head in sorted(totals):
        print(f"{head:26s} accuracy {hits[head]}/{totals[head]} = {hits[head] / totals[head]:.2f}")
        if head in confusion:
            cells = sorted(confusion[head].items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
            print("    " + ", ".join(f"{want} -> {got}: {n}" for (want, got), n in cells))


if __name__ == "__main__":
    main()
