#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/support/test_env.h"

namespace vsieve::testing {

// One generated input and what the decoder may make of it. `allowed` lists the acceptable
// outcomes; ErrorCode::kOk in it means "success with at least one frame" is acceptable.
struct BadInputCase {
  std::string name;
  std::string path;
  std::vector<common::ErrorCode> allowed;

  bool Allows(common::ErrorCode code) const;
};

// Writes the malformed-input corpus (reliability notes 4.7) into `dir` with the ffmpeg CLI and
// seeded byte edits: empty, random bytes, text, HTML, audio only, header only, truncated (moov at
// end and faststart), flipped bytes in MP4 and TS, a zeroed block in MKV, an unknown fourcc,
// absurd and too-small dimensions, 16x16, 8K, rotation, a single frame, a duplicate of a good
// file and 20 seeded mutants. Deterministic for a given ffmpeg build. Returns an empty vector
// when the good source clips cannot be made (no ffmpeg or no libx264). Blocks for a few seconds.
std::vector<BadInputCase> WriteBadInputCorpus(const std::string& dir);

// ---- Implementation (header-only: the test glob compiles only *_test.cc). ----

namespace bad_input_detail {

using common::ErrorCode;

inline constexpr char kTestSource[] = "testsrc2=size=160x120:rate=30:duration=2";
inline constexpr char kSine[] = "sine=frequency=440:duration=2";

// Every code a damaged but small file may legitimately end in (never kTimeout or kInternal).
inline std::vector<ErrorCode> AnyDecodeOutcome() {
  return {ErrorCode::kOk,
          ErrorCode::kContainerUnrecognized,
          ErrorCode::kNoVideoStream,
          ErrorCode::kTruncated,
          ErrorCode::kDecodeErrorsExceeded,
          ErrorCode::kUnsupportedCodec,
          ErrorCode::kDimensionsExceedLimit};
}

// Overwrites `count` bytes at random offsets (past the first 64) with random values.
inline std::string FlipBytes(std::string bytes, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  if (bytes.size() <= 64) return bytes;
  std::uniform_int_distribution<size_t> offset(64, bytes.size() - 1);
  std::uniform_int_distribution<int> value(0, 255);
  for (int i = 0; i < count; ++i) bytes[offset(rng)] = static_cast<char>(value(rng));
  return bytes;
}

// trasher-style mutant: one to four bursts of 1-64 random bytes.
inline std::string Mutate(std::string bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  if (bytes.size() <= 128) return bytes;
  std::uniform_int_distribution<int> bursts(1, 4);
  std::uniform_int_distribution<size_t> offset(0, bytes.size() - 65);
  std::uniform_int_distribution<int> length(1, 64);
  std::uniform_int_distribution<int> value(0, 255);
  for (int b = bursts(rng); b > 0; --b) {
    const size_t at = offset(rng);
    for (int n = length(rng); n > 0; --n) bytes[at + n - 1] = static_cast<char>(value(rng));
  }
  return bytes;
}

inline std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  return bytes;
}

inline void PutBigEndian16(std::string* bytes, size_t at, uint16_t value) {
  (*bytes)[at] = static_cast<char>(value >> 8);
  (*bytes)[at + 1] = static_cast<char>(value & 0xff);
}

// An mp4 whose avc1 sample entry is renamed `fourcc`, or whose size fields say width x height.
inline std::string PatchSampleEntry(std::string bytes, const std::string& fourcc, int width,
                                    int height) {
  // The sample entry follows 'stsd'; an earlier "avc1" is a brand in 'ftyp'.
  const size_t stsd = bytes.find("stsd");
  const size_t at = stsd == std::string::npos ? stsd : bytes.find("avc1", stsd);
  if (at == std::string::npos) return bytes;
  if (!fourcc.empty()) bytes.replace(at, 4, fourcc);
  if (width > 0 && at + 32 <= bytes.size()) {
    // size(4) 'avc1'(4) reserved(6) data_reference_index(2) pre_defined(16) width(2) height(2)
    PutBigEndian16(&bytes, at + 28, static_cast<uint16_t>(width));
    PutBigEndian16(&bytes, at + 30, static_cast<uint16_t>(height));
    const size_t tkhd = bytes.find("tkhd");
    // tkhd v0 after its type: version/flags, times, ids, duration (24), reserved (8), layer,
    // group, volume, reserved (8), matrix (36), then width and height in 16.16 fixed point.
    if (tkhd != std::string::npos && tkhd + 88 <= bytes.size() && bytes[tkhd + 4] == 0) {
      PutBigEndian16(&bytes, tkhd + 80, static_cast<uint16_t>(width));
      PutBigEndian16(&bytes, tkhd + 84, static_cast<uint16_t>(height));
    }
  }
  return bytes;
}

inline std::vector<std::string> X264(const std::string& size, int frames) {
  return {"-f",        "lavfi",
          "-i",        "testsrc2=size=" + size + ":rate=30",
          "-frames:v", std::to_string(frames),
          "-c:v",      "libx264",
          "-preset",   "ultrafast",
          "-pix_fmt",  "yuv420p"};
}

}  // namespace bad_input_detail

inline bool BadInputCase::Allows(common::ErrorCode code) const {
  return std::find(allowed.begin(), allowed.end(), code) != allowed.end();
}

inline std::vector<BadInputCase> WriteBadInputCorpus(const std::string& dir) {
  using common::ErrorCode;
  std::vector<BadInputCase> cases;
  const std::string good = dir + "/good.mp4";
  const std::string faststart = dir + "/good_faststart.mp4";
  const std::string good_ts = dir + "/good.ts";
  const std::string good_mkv = dir + "/good.mkv";
  if (!Ffmpeg({"-f",   "lavfi",   "-i",        bad_input_detail::kTestSource,
               "-f",   "lavfi",   "-i",        bad_input_detail::kSine,
               "-c:v", "libx264", "-preset",   "ultrafast",
               "-g",   "15",      "-pix_fmt",  "yuv420p",
               "-c:a", "aac",     "-shortest", good}) ||
      !Ffmpeg({"-i", good, "-c", "copy", "-movflags", "+faststart", faststart}) ||
      !Ffmpeg({"-i", good, "-c", "copy", good_ts}) ||
      !Ffmpeg({"-i", good, "-c", "copy", good_mkv})) {
    return cases;
  }
  const std::string good_bytes = ReadFile(good);
  const std::string faststart_bytes = ReadFile(faststart);
  const std::string ts_bytes = ReadFile(good_ts);
  const std::string mkv_bytes = ReadFile(good_mkv);

  auto add_bytes = [&](const std::string& name, const std::string& bytes,
                       std::vector<ErrorCode> allowed) {
    const std::string path = dir + "/" + name;
    if (WriteFile(path, bytes)) cases.push_back({name, path, std::move(allowed)});
  };
  auto add_ffmpeg = [&](const std::string& name, std::vector<std::string> args,
                        std::vector<ErrorCode> allowed) {
    const std::string path = dir + "/" + name;
    args.push_back(path);
    if (Ffmpeg(args)) cases.push_back({name, path, std::move(allowed)});
  };

  cases.push_back({"good.mp4", good, {ErrorCode::kOk}});
  cases.push_back({"good_faststart.mp4", faststart, {ErrorCode::kOk}});
  cases.push_back({"good.ts", good_ts, {ErrorCode::kOk}});
  cases.push_back({"good.mkv", good_mkv, {ErrorCode::kOk}});
  add_bytes("duplicate.mp4", good_bytes, {ErrorCode::kOk});
  add_bytes("empty.mp4", "", {ErrorCode::kInputEmpty});
  add_bytes("random_1mb.mp4", bad_input_detail::RandomBytes(1 << 20, 7),
            {ErrorCode::kContainerUnrecognized});
  add_bytes("text.mp4", "This is not a video.\nIt is a text file named .mp4.\n",
            {ErrorCode::kContainerUnrecognized});
  add_bytes("html.mp4",
            "<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>\n"
            "<body><h1>Forbidden</h1><p>You don't have permission.</p></body></html>\n",
            {ErrorCode::kContainerUnrecognized});
  add_bytes("header_only.mp4", good_bytes.substr(0, 2048),
            {ErrorCode::kContainerUnrecognized, ErrorCode::kTruncated});
  add_bytes("truncated_half_moov_end.mp4", good_bytes.substr(0, good_bytes.size() / 2),
            {ErrorCode::kContainerUnrecognized, ErrorCode::kTruncated});
  add_bytes("truncated_half_faststart.mp4", faststart_bytes.substr(0, faststart_bytes.size() / 2),
            {ErrorCode::kOk, ErrorCode::kTruncated, ErrorCode::kDecodeErrorsExceeded});
  add_bytes("flipped_200.mp4", bad_input_detail::FlipBytes(good_bytes, 200, 11),
            bad_input_detail::AnyDecodeOutcome());
  add_bytes("flipped_300.ts", bad_input_detail::FlipBytes(ts_bytes, 300, 13),
            bad_input_detail::AnyDecodeOutcome());
  {
    std::string zeroed = mkv_bytes;
    const size_t at = zeroed.size() / 2;
    std::fill_n(zeroed.begin() + static_cast<long>(at), std::min<size_t>(4096, zeroed.size() - at),
                '\0');
    add_bytes("zeroed_4k.mkv", zeroed, bad_input_detail::AnyDecodeOutcome());
  }
  add_bytes("unknown_fourcc.mp4", bad_input_detail::PatchSampleEntry(faststart_bytes, "zzzz", 0, 0),
            {ErrorCode::kUnsupportedCodec});
  add_bytes("absurd_dimensions.mp4",
            bad_input_detail::PatchSampleEntry(faststart_bytes, "", 30000, 30000),
            {ErrorCode::kDimensionsExceedLimit});
  add_ffmpeg("audio_only.mp4",
             {"-f", "lavfi", "-i", bad_input_detail::kSine, "-c:a", "aac", "-f", "mp4"},
             {ErrorCode::kNoVideoStream});
  {
    auto args = bad_input_detail::X264("16x16", 30);
    add_ffmpeg("tiny_16x16.mp4", args, {ErrorCode::kOk});
    args = bad_input_detail::X264("8x8", 10);
    add_ffmpeg("too_small_8x8.mp4", args, {ErrorCode::kDimensionsExceedLimit});
    args = bad_input_detail::X264("7680x4320", 2);
    add_ffmpeg("huge_8k.mp4", args, {ErrorCode::kOk});
    args = bad_input_detail::X264("160x120", 1);
    add_ffmpeg("single_frame.mp4", args, {ErrorCode::kOk});
  }
  // ffmpeg 5.1 stores the tag's negation: rotate=270 gives a clip displayed 90 degrees clockwise.
  add_ffmpeg("rotated.mp4", {"-i", good, "-c", "copy", "-metadata:s:v:0", "rotate=270"},
             {ErrorCode::kOk});

  const std::string* sources[] = {&good_bytes, &faststart_bytes, &ts_bytes, &mkv_bytes};
  const char* extensions[] = {".mp4", ".mp4", ".ts", ".mkv"};
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const int which = static_cast<int>(seed % 4);
    add_bytes("mutant_" + std::to_string(seed) + extensions[which],
              bad_input_detail::Mutate(*sources[which], 1000 + seed),
              bad_input_detail::AnyDecodeOutcome());
  }
  return cases;
}

}  // namespace vsieve::testing
