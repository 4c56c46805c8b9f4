// main() of the models and daemon test programs: the test kinds of ItemModel
// are registered before any test runs, then GoogleTest runs the tests.
#include <gtest/gtest.h>

#include "tests/support/test_item_models.h"

int main(int argc, char** argv) {
  vsieve::models::RegisterTestItemModelKinds();
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
