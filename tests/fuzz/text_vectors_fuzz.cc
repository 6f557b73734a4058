#include "emb/io/word_vectors.h"
#include "io_fuzz.h"

EMB_FUZZ_READER(emb::io::parse_text_vectors)
