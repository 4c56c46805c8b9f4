#!/usr/bin/env bash
# Builds (Release) and runs the whole test suite, then the bad-input corpus under ASan+UBSan.
# VSIEVE_FAST=1 leaves out the tests labelled "slow" (the kill -9 crash test);
# VSIEVE_SKIP_ASAN=1 leaves out the sanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
bash scripts/build.sh release
label_args=()
if [ "${VSIEVE_FAST:-0}" = 1 ]; then label_args=(-LE slow); fi
ctest --preset release -j "$jobs" "${label_args[@]}"
if [ "${VSIEVE_SKIP_ASAN:-0}" != 1 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs" --target media_tests
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ./build/asan/tests/media_tests --gtest_filter='BadInput*:VideoDecoder*'
fi
