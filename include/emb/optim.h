// emb/optim.h — every optimizer: SGD, Adagrad, Adam, AdamW, SparseAdam (PyTorch's), and
// RowWiseAdagrad, LazyAdam, LazyAdamW (for embedding tables with sparse gradients).
#pragma once

#include "emb/optim/adagrad.h"
#include "emb/optim/adam.h"
#include "emb/optim/lazy_adam.h"
#include "emb/optim/optimizer.h"
#include "emb/optim/rowwise_adagrad.h"
#include "emb/optim/sgd.h"
#include "emb/optim/sparse_adam.h"
