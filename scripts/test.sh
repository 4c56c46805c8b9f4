#!/usr/bin/env bash
# Builds (Release) and runs the fast test suite, then the bad-input corpus under ASan+UBSan.
# Slow tests (ctest label "slow") run with VSIEVE_SLOW=1.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
bash scripts/build.sh release
label_args=(-LE slow)
if [ "${VSIEVE_SLOW:-0}" = 1 ]; then label_args=(); fi
ctest --preset release -j "$jobs" "${label_args[@]}"
if [ "${VSIEVE_SKIP_ASAN:-0}" != 1 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs" --target media_tests
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ./build/asan/tests/media_tests --gtest_filter='BadInput*:VideoDecoder*'
fi
