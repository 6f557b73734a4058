#include "emb/io/npy.h"
#include "io_fuzz.h"

EMB_FUZZ_READER(emb::io::parse_npy)
