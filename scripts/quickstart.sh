#!/usr/bin/env bash
# A new machine, one command: install packages, fetch the OCR models, build, and run the main job
# on the embedded default: a few clips (from ../shared/assets/videos when present, otherwise clips
# generated here with ffmpeg) imported as input rows into the embedded SQLite store
# (vsieve-data/vsieve.db), processed by the daemon (`vsieve run --until-idle`), and exported: one
# result row per clip on stdout and in vsieve-data/quickstart.jsonl. Running it again keeps the
# rows already done (import is idempotent by video_id).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/fetch-models.sh vsieve-models
bash scripts/build.sh release
mkdir -p vsieve-data
clips=()
assets=../shared/assets/videos
if [ -d "$assets" ]; then
  for f in letterbox_pillarbox/rocket-blackbars.mp4 text_overlay_subtitles_watermark/DERIVED_friday_hardsub.mp4 \
           natural/flower.mp4 static_slideshow/example-movie.mp4 low_quality/kphotoalbum_webcam_160x120.avi; do
    [ -f "$assets/$f" ] && clips+=("$assets/$f")
  done
fi
if [ ${#clips[@]} -eq 0 ]; then
  g=vsieve-data/clips
  mkdir -p "$g"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=25:duration=8 \
    -vf "pad=640:480:0:60" -c:v libx264 -pix_fmt yuv420p "$g/letterboxed.mp4"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=25:duration=1 \
    -frames:v 1 "$g/still.png"
  ffmpeg -hide_banner -loglevel error -y -loop 1 -i "$g/still.png" -t 6 -r 25 -c:v libx264 \
    -pix_fmt yuv420p "$g/static.mp4"
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i mandelbrot=size=640x360:rate=25 -t 8 \
    -c:v libx264 -pix_fmt yuv420p "$g/natural.mp4"
  clips=("$g/letterboxed.mp4" "$g/static.mp4" "$g/natural.mp4")
fi
vsieve=./build/release/vsieve
store=sqlite://vsieve-data/vsieve.db
rows=vsieve-data/quickstart-rows.jsonl
: >"$rows"
for clip in "${clips[@]}"; do
  id=$(basename "${clip%.*}")
  printf '{"video_id": "%s", "oss_bucket": "", "video_path": "%s", "video_tag": "quickstart", "info": {}}\n' \
    "$id" "$(realpath "$clip")" >>"$rows"
done
"$vsieve" import --store "$store" "$rows"
"$vsieve" run --store "$store" --until-idle --admin-listen off --log-level info
"$vsieve" export --store "$store" --state all | tee vsieve-data/quickstart.jsonl
"$vsieve" status --store "$store"
