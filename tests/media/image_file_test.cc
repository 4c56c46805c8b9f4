#include "media/image_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <string>

#include "tests/support/test_env.h"

namespace vsieve::media {
namespace {

using common::ErrorCode;
using testing::TempDir;

// A picture with smooth gradients, sharp edges and every channel distinct.
cv::Mat Picture(int width = 96, int height = 64) {
  cv::Mat bgr(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      bgr.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>(x * 255 / width), static_cast<uchar>(y * 255 / height), 200);
    }
  }
  cv::rectangle(bgr, cv::Rect(width / 4, height / 4, width / 2, height / 2), cv::Scalar(0, 0, 0),
                cv::FILLED);
  return bgr;
}

double MeanAbsDiff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  const cv::Scalar m = cv::mean(diff);
  return (m[0] + m[1] + m[2]) / 3.0;
}

TEST(ImageFileTest, FormatFollowsTheExtension) {
  EXPECT_EQ(*ImageFormatOf("a/b.PNG"), ImageFormat::kPng);
  EXPECT_EQ(*ImageFormatOf("x.jpeg"), ImageFormat::kJpeg);
  EXPECT_EQ(*ImageFormatOf("x.jpg"), ImageFormat::kJpeg);
  EXPECT_EQ(*ImageFormatOf("x.bmp"), ImageFormat::kBmp);
  EXPECT_EQ(*ImageFormatOf("x.tif"), ImageFormat::kTiff);
  EXPECT_EQ(*ImageFormatOf("x.webp"), ImageFormat::kWebp);
  EXPECT_EQ(ImageFormatOf("x.gif").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ImageFormatOf("png").status().code(), ErrorCode::kInvalidArgument);
}

TEST(ImageFileTest, LosslessFormatsRoundTripExactly) {
  TempDir dir;
  const cv::Mat picture = Picture(97, 63);  // odd sizes: rows not a multiple of anything
  for (const std::string name : {"a.png", "a.bmp", "a.tiff"}) {
    const std::string path = dir.File(name);
    ASSERT_TRUE(WriteImage(path, picture, *ImageFormatOf(path)).ok()) << name;
    auto read = ReadImage(path);
    ASSERT_TRUE(read.ok()) << name << ": " << read.status().ToString();
    ASSERT_EQ(read->size(), picture.size()) << name;
    EXPECT_EQ(MeanAbsDiff(*read, picture), 0.0) << name;
  }
}

TEST(ImageFileTest, JpegIsCloseAndQualityMatters) {
  TempDir dir;
  const cv::Mat picture = Picture(160, 120);
  const std::string fine = dir.File("fine.jpg");
  const std::string coarse = dir.File("coarse.jpg");
  ASSERT_TRUE(WriteImage(fine, picture, ImageFormat::kJpeg, 95).ok());
  ASSERT_TRUE(WriteImage(coarse, picture, ImageFormat::kJpeg, 5).ok());
  EXPECT_GT(std::filesystem::file_size(fine), std::filesystem::file_size(coarse));
  auto read = ReadImage(fine);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_LT(MeanAbsDiff(*read, picture), 4.0);
}

TEST(ImageFileTest, WebpWhereTheEncoderExists) {
  TempDir dir;
  const std::string path = dir.File("a.webp");
  const common::Status written = WriteImage(path, Picture(), ImageFormat::kWebp);
  if (written.code() == ErrorCode::kUnsupportedCodec) GTEST_SKIP() << written.message();
  ASSERT_TRUE(written.ok()) << written.ToString();
  auto read = ReadImage(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_LT(MeanAbsDiff(*read, Picture()), 8.0);
}

TEST(ImageFileTest, ReadsOtherPixelFormatsAsBgr) {
  VSIEVE_REQUIRE_FFMPEG();
  TempDir dir;
  for (const std::string fmt : {"rgba", "gray", "pal8", "rgb48be"}) {
    const std::string path = dir.File("red_" + fmt + ".png");
    ASSERT_TRUE(testing::Ffmpeg(
        {"-f", "lavfi", "-i", "color=c=0xff0000:s=40x30", "-frames:v", "1", "-pix_fmt", fmt, path}))
        << fmt;
    auto read = ReadImage(path);
    ASSERT_TRUE(read.ok()) << fmt << ": " << read.status().ToString();
    ASSERT_EQ(read->size(), cv::Size(40, 30)) << fmt;
    const cv::Vec3b px = read->at<cv::Vec3b>(15, 20);
    if (fmt == "gray") {
      EXPECT_EQ(px[0], px[2]) << fmt;  // red as grey: equal channels
    } else if (fmt == "pal8") {
      EXPECT_GT(px[2], px[0] + 150) << fmt;  // ffmpeg's fixed palette has no pure red
      EXPECT_GT(px[2], px[1] + 150) << fmt;
    } else {
      EXPECT_LE(px[0], 2) << fmt;
      EXPECT_LE(px[1], 2) << fmt;
      EXPECT_GE(px[2], 253) << fmt;
    }
  }
}

TEST(ImageFileTest, BadFilesGiveClearErrors) {
  TempDir dir;
  EXPECT_EQ(ReadImage(dir.File("missing.png")).status().code(), ErrorCode::kObjectNotFound);
  ASSERT_TRUE(testing::WriteFile(dir.File("text.png"), "this is not a picture\n"));
  EXPECT_FALSE(ReadImage(dir.File("text.png")).ok());
  ASSERT_TRUE(testing::WriteFile(dir.File("empty.jpg"), ""));
  EXPECT_FALSE(ReadImage(dir.File("empty.jpg")).ok());
  // A PNG cut after its header: an error, not a crash or a half picture.
  const std::string whole = dir.File("whole.png");
  ASSERT_TRUE(WriteImage(whole, Picture(), ImageFormat::kPng, 0).ok());
  std::string bytes(std::filesystem::file_size(whole), '\0');
  {
    std::FILE* f = std::fopen(whole.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fread(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  ASSERT_TRUE(testing::WriteFile(dir.File("cut.png"), bytes.substr(0, 60)));
  EXPECT_FALSE(ReadImage(dir.File("cut.png")).ok());
  // Too large for the limit given.
  auto big = ReadImage(whole, 100);
  EXPECT_EQ(big.status().code(), ErrorCode::kDimensionsExceedLimit);
}

TEST(ImageFileTest, BadWritesLeaveNothing) {
  TempDir dir;
  EXPECT_EQ(WriteImage(dir.File("a.png"), cv::Mat(), ImageFormat::kPng).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(WriteImage(dir.File("a.png"), cv::Mat(8, 8, CV_8UC1), ImageFormat::kPng).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(WriteImage(dir.File("a.png"), Picture(), ImageFormat::kPng, 10).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(WriteImage(dir.File("a.jpg"), Picture(), ImageFormat::kJpeg, 101).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir.File("a.png")));
  const std::string nowhere = dir.File("no/such/folder/a.png");
  EXPECT_EQ(WriteImage(nowhere, Picture(), ImageFormat::kPng).code(), ErrorCode::kEncodeFailed);
  EXPECT_FALSE(std::filesystem::exists(nowhere));
}

}  // namespace
}  // namespace vsieve::media
