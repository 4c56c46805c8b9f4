#pragma once

#include <opencv2/core.hpp>
#include <string>

#include "common/status.h"

namespace vsieve::media {

// Still images read and written with libav's image codecs (PNG, JPEG, BMP, TIFF, WebP), so that
// the shipped program need not load OpenCV's imgcodecs and the many libraries it brings with it
// (about 20 MB of resident memory in every process). EXIF orientation is not applied.

// The image file formats WriteImage() knows, by file name extension.
enum class ImageFormat { kPng, kJpeg, kBmp, kTiff, kWebp };

// The format named by `path`'s extension (.png, .jpg/.jpeg, .bmp, .tif/.tiff, .webp; any
// case). Errors: kInvalidArgument for any other extension.
common::StatusOr<ImageFormat> ImageFormatOf(const std::string& path);

// Reads the first picture of the image file at `path` as 8-bit BGR (alpha dropped, palette and
// grey expanded). Pictures above `max_pixels` are refused. Errors: kObjectNotFound (no such
// file), kContainerUnrecognized (not an image libav reads), kNoVideoStream, kUnsupportedCodec,
// kDimensionsExceedLimit, kDecodeErrorsExceeded (the picture does not decode).
common::StatusOr<cv::Mat> ReadImage(const std::string& path,
                                    long long max_pixels = 8192LL * 8192LL);

// Writes the 8-bit BGR picture `bgr` to `path` in `format`. `quality` is the PNG compression
// level (0-9), the JPEG and WebP quality (0-100; JPEG's is mapped onto the encoder's scale of
// 31..2), and ignored for BMP and TIFF; -1 takes the default (PNG 3, JPEG 95, WebP 90). Nothing
// is left at `path` on failure. Errors: kInvalidArgument (empty or not 8-bit BGR, quality out of
// range), kUnsupportedCodec (no encoder in this libav), kEncodeFailed (encoding or writing
// failed).
common::Status WriteImage(const std::string& path, const cv::Mat& bgr, ImageFormat format,
                          int quality = -1);

}  // namespace vsieve::media
