#include "emb/io/safetensors.h"
#include "io_fuzz.h"

EMB_FUZZ_READER(emb::io::parse_safetensors)
