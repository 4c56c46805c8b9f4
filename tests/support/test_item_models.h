#pragma once

namespace vsieve::models {

// Registers the test kinds of ItemModel (usable only with VSIEVE_TEST_MODELS=1; see
// RegisterItemModelKind()). Each multiplies every item by params.factor (default 1) and gives
// that as the item's one output, so results are checkable; they differ in how they misbehave:
//
//   scale     {"factor": F}                   nothing else
//   abort_on  {"value": V, "factor": F}       calls abort() when an item's first value is V
//   hang_on   {"value": V, "factor": F}       sleeps forever when an item's first value is V
//   exit_on   {"value": V, "code": C, ...}    exits with status C when an item's first value is V
//   slow      {"ms": M, "factor": F}          sleeps M ms per RunItems() call
//   fail_on   {"value": V, "factor": F}       returns kModelFailed when an item's first value is V
//
// Instead of "value", "above": V triggers on a first value greater than V. With "inner": K the
// outputs (and batch_capacity(), warmup()) come from a model of kind K built from the same spec
// (e.g. "dnn": a real ONNX head that aborts on chosen inputs); otherwise batch_capacity() is the
// spec's max_batch. Bad params are kInvalidArgument naming the param.
// Called by the test programs before they build a test kind (and by `vsieve-test`, the vsieve
// binary the tests run as a model child); idempotent and thread-safe.
void RegisterTestItemModelKinds();

}  // namespace vsieve::models
