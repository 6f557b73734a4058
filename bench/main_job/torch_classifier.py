#!/usr/bin/python3
"""The emb train model in PyTorch 1.13, for the side-by-side comparison (docs/PERFORMANCE.md).

Same data handling as emb train (whitespace tokens, "</s>" ending every line, words kept from
--minCount, fastText's hashed word n-grams in --bucket extra rows), same model (EmbeddingBag mean
over uniform(-1/dim, 1/dim) rows, a bias-free linear layer starting at zero, softmax cross
entropy), same optimizer (sparse SGD, gradients summed over a batch, lr decaying linearly to 0).
Batches of --batch examples per step (emb's default: 2 threads x 8 examples), shuffled every
epoch. Prints "P@1 <value>" on the test file.

  torch_classifier.py TRAIN TEST --dim 50 --epoch 10 --lr 0.5 --wordNgrams 1 --thread 2
"""
import argparse
import random
import sys

import torch

EOS = "</s>"
LABEL = "__label__"


def ft_hash(token):
    h = 2166136261
    for b in token.encode("utf-8"):
        if b >= 128:
            b -= 256  # fastText hashes signed chars
        h = (h ^ (b & 0xFFFFFFFF)) & 0xFFFFFFFF
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def widen(h):  # int32 -> uint64 sign extension, as fastText stores word hashes
    return h if h < 2**31 else h + (2**64 - 2**32)


def read(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            toks = line.split()
            if not toks:
                continue
            labels = [t for t in toks if t.startswith(LABEL)]
            words = [t for t in toks if not t.startswith(LABEL)] + [EOS]
            rows.append((labels, words))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--epoch", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--minCount", type=int, default=1)
    ap.add_argument("--wordNgrams", type=int, default=1)
    ap.add_argument("--bucket", type=int, default=2000000)
    ap.add_argument("--thread", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.thread)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    random.seed(a.seed)

    train = read(a.train)
    counts, label_ids = {}, {}
    for labels, words in train:
        for w in words:
            counts[w] = counts.get(w, 0) + 1
        for l in labels:
            label_ids.setdefault(l, len(label_ids))
    vocab = {w: i for i, w in enumerate(w for w, c in counts.items() if c >= a.minCount)}
    nwords = len(vocab)
    bucket = a.bucket if a.wordNgrams > 1 else 0
    hash_cache = {}

    def bag(words):
        ids = [vocab[w] for w in words if w in vocab]
        if bucket:
            hs = [hash_cache.setdefault(w, widen(ft_hash(w))) for w in words]
            for i in range(len(hs)):
                h = hs[i]
                for j in range(i + 1, min(len(hs), i + a.wordNgrams)):
                    h = (h * 116049371 + hs[j]) % 2**64
                    ids.append(nwords + h % bucket)
        return ids

    xs = [bag(w) for _, w in train]
    ys = [[label_ids[l] for l in labels] for labels, _ in train]

    emb = torch.nn.EmbeddingBag(nwords + bucket, a.dim, mode="mean", sparse=True)
    torch.nn.init.uniform_(emb.weight, -1.0 / a.dim, 1.0 / a.dim)
    out = torch.nn.Linear(a.dim, len(label_ids), bias=False)
    torch.nn.init.zeros_(out.weight)
    opt = torch.optim.SGD(list(emb.parameters()) + list(out.parameters()), lr=a.lr)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")

    n = len(xs)
    total = a.epoch * n
    done = 0
    order = list(range(n))
    for _ in range(a.epoch):
        random.shuffle(order)
        for s in range(0, n, a.batch):
            idx = order[s:s + a.batch]
            flat, offs = [], []
            for i in idx:
                offs.append(len(flat))
                flat.extend(xs[i])
            target = torch.tensor([random.choice(ys[i]) for i in idx])
            for g in opt.param_groups:
                g["lr"] = a.lr * (1.0 - done / total)
            opt.zero_grad()
            loss = loss_fn(out(emb(torch.tensor(flat), torch.tensor(offs))), target)
            loss.backward()
            opt.step()
            done += len(idx)

    test = read(a.test)
    hits = 0
    with torch.no_grad():
        for s in range(0, len(test), 4096):
            chunk = test[s:s + 4096]
            flat, offs = [], []
            for _, words in chunk:
                offs.append(len(flat))
                flat.extend(bag(words))
            pred = out(emb(torch.tensor(flat, dtype=torch.long), torch.tensor(offs))).argmax(1)
            for (labels, _), p in zip(chunk, pred.tolist()):
                hits += any(label_ids.get(l) == p for l in labels)
    print(f"N\t{len(test)}")
    print(f"P@1\t{hits / len(test):.3g}")


if __name__ == "__main__":
    sys.exit(main())
