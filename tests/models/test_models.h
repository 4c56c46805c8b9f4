#pragma once

// Shared by the model-runtime tests (models/ and daemon/): the small ONNX graphs that
// tests/models/make_test_heads.py writes with Debian's python3-onnx.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/test_env.h"

namespace vsieve::testing {

// Writes the test graphs into `dir`. Returns "" on success, or why the caller should skip
// (python3-onnx missing); any other failure is reported through ADD_FAILURE.
inline std::string MakeTestModels(const std::string& dir) {
  const std::string python = "/usr/bin/python3";
  std::string out;
  std::string err;
  const int rc =
      RunCommand({python, SourceDir() + "/tests/models/make_test_heads.py", dir}, &out, &err);
  if (rc == -1 || rc == 127) return python + " is not available";
  if (rc == 3) return "python3-onnx is not installed (Debian package python3-onnx)";
  if (rc != 0) {
    ADD_FAILURE() << "make_test_heads.py failed (" << rc << "): " << out << err;
    return "make_test_heads.py failed";
  }
  return "";
}

}  // namespace vsieve::testing

// Generates the test graphs into `dir` or skips the test with the reason.
#define VSIEVE_MAKE_TEST_MODELS(dir)                                         \
  do {                                                                       \
    const std::string vsieve_skip_ = ::vsieve::testing::MakeTestModels(dir); \
    if (!vsieve_skip_.empty()) GTEST_SKIP() << vsieve_skip_;                 \
  } while (false)
