// emb/emb.h — the whole public API.
#pragma once

#include "emb/dtype.h"
#include "emb/embedding.h"
#include "emb/embedding_bag.h"
#include "emb/error.h"
#include "emb/generator.h"
#include "emb/io/checkpoint.h"
#include "emb/io/npy.h"
#include "emb/io/safetensors.h"
#include "emb/io/table.h"
#include "emb/io/word_vectors.h"
#include "emb/lookup_options.h"
#include "emb/optim.h"
#include "emb/parameter.h"
#include "emb/sparse_grad.h"
#include "emb/tensor.h"
#include "emb/version.h"
