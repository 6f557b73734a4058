#include "emb/version.h"

namespace emb {

const char* version() {
  return "0.1.0";
}

}  // namespace emb
