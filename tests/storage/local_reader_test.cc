#include <gtest/gtest.h>

#include "storage/reader.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;

TEST(LocalReaderTest, ReadsPathsAndFileUris) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteFile(dir.File("a.mp4"), "abc"));
  LocalReader reader;
  auto by_path = reader.Fetch(ObjectRef{"", dir.File("a.mp4")});
  ASSERT_TRUE(by_path.ok()) << by_path.status().ToString();
  EXPECT_EQ(by_path->size_bytes, 3);
  EXPECT_EQ(by_path->source_tier, "local");
  auto by_uri = reader.Fetch(ObjectRef{"", "file://" + dir.File("a.mp4")});
  ASSERT_TRUE(by_uri.ok());
  EXPECT_EQ(by_uri->local_path, dir.File("a.mp4"));
}

TEST(LocalReaderTest, MissingEmptyAndDirectoryAreClearErrors) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteFile(dir.File("empty.mp4"), ""));
  LocalReader reader;
  EXPECT_EQ(reader.Fetch(ObjectRef{"", dir.File("nope.mp4")}).status().code(),
            ErrorCode::kObjectNotFound);
  EXPECT_EQ(reader.Fetch(ObjectRef{"", dir.File("empty.mp4")}).status().code(),
            ErrorCode::kInputEmpty);
  EXPECT_EQ(reader.Fetch(ObjectRef{"", dir.path()}).status().code(), ErrorCode::kObjectNotFound);
  EXPECT_EQ(reader.Fetch(ObjectRef{"", ""}).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vsieve::storage
