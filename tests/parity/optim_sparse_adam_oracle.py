"""Runs torch.optim.SparseAdam on the inputs the C++ parity test wrote; writes the parameter after
every step. Usage: optim_sparse_adam_oracle.py IN OUT [IN OUT ...] (one run per pair). Exits 77
when torch cannot be imported."""
import sys

try:
    import torch
except ImportError:
    sys.exit(77)


def main(in_path, out_path):
    with open(in_path) as f:
        lines = f.read().split("\n")
    head = lines[0].split()
    dtype = torch.float64 if head[0] == "float64" else torch.float32
    rows, dim, steps = int(head[1]), int(head[2]), int(head[3])
    lr, beta1, beta2, eps = (float.fromhex(x) for x in head[4:8])
    maximize = head[8] == "1"
    w0 = [float.fromhex(x) for x in lines[1].split()]
    param = torch.tensor(w0, dtype=dtype).reshape(rows, dim).requires_grad_(True)
    kwargs = dict(lr=lr, betas=(beta1, beta2), eps=eps)
    if maximize:
        kwargs["maximize"] = True
    opt = torch.optim.SparseAdam([param], **kwargs)
    out = []
    pos = 2
    for _ in range(steps):
        nnz = int(lines[pos])
        ids = [int(x) for x in lines[pos + 1].split()]
        vals = [float.fromhex(x) for x in lines[pos + 2].split()]
        pos += 3
        indices = torch.tensor(ids, dtype=torch.int64).reshape(1, nnz)
        values = torch.tensor(vals, dtype=dtype).reshape(nnz, dim)
        opt.zero_grad()
        if nnz == 0:
            # 1.13 raises on an empty sparse gradient (sparse_mask of an empty grad); 2.x skips
            # the update and the step still counts. That is emb's behaviour: emulate it.
            opt.state[param]["step"] += 1
        else:
            param.grad = torch.sparse_coo_tensor(indices, values, (rows, dim))
            opt.step()
        out.append(" ".join(float(x).hex() for x in param.detach().reshape(-1).tolist()))
    with open(out_path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit("usage: optim_sparse_adam_oracle.py IN OUT [IN OUT ...]")
    for i in range(0, len(args), 2):
        main(args[i], args[i + 1])
