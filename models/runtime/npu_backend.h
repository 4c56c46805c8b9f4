#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "models/runtime/item_model.h"

namespace vsieve::models {

// What a vendor NPU runtime (Ascend CANN / MindSpore Lite, seed 003) implements to run models on
// "npu:N" devices. None is compiled into this build: CreateNpuBackend() says so, and ParseDevice()
// refuses "npu:N" with the same meaning, so a config naming an NPU fails at start rather than
// falling back to the CPU.
//
// A backend would load a model file for one device and run items through it like any ItemModel
// (so the instance pools, micro-batching and child-process isolation work unchanged), e.g. one
// Model per device with context.ascend.device_id = N, built from a converted MINDIR or an ONNX
// file.
//
// Ownership: the caller owns the backend and the models it loads; a model must not outlive its
// backend. Thread-safety: implementations must allow Load() from several threads; each loaded
// model is used by one thread at a time (ItemModel's contract).
class NpuBackend {
 public:
  virtual ~NpuBackend() = default;

  // The runtime's name and version, for device_info in result rows.
  virtual std::string name() const = 0;

  // NPUs this host has (npu:0 .. npu:count-1).
  virtual int device_count() const = 0;

  // Loads spec.model for npu:`device_index` with room for spec.max_batch items of
  // spec.item_shape. Errors: kInvalidArgument for a device index out of range; kModelFailed
  // naming the file for a model the runtime cannot load.
  virtual common::StatusOr<std::unique_ptr<ItemModel>> Load(const ItemModelSpec& spec,
                                                            int device_index) = 0;
};

// The NPU backend compiled into this build. Here none is: always kInvalidArgument "npu backend
// not compiled in". Thread-safe.
common::StatusOr<std::unique_ptr<NpuBackend>> CreateNpuBackend();

}  // namespace vsieve::models
