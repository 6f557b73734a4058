// One libFuzzer entry point per reader: any bytes must give a result or an emb::Error
// (FormatError for bad bytes), never a crash, a hang, a leak or an oversized allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "emb/error.h"

#define EMB_FUZZ_READER(CALL)                                                               \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {       \
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size); \
    try {                                                                                   \
      (void)CALL(bytes, "fuzz-input");                                                      \
    } catch (const emb::FormatError&) {                                                     \
    }                                                                                       \
    return 0;                                                                               \
  }
