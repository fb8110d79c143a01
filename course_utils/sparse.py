"""What zeros buy: weights stored and multiplied as sparse matrices (CSR).

A masked model is a dense model with zeros in it. :func:`to_sparse` makes a
copy whose Linear layers keep only their nonzero weights, in CSR (compressed
sparse row: the values, their column indices, and where each row starts), and
multiply with ``torch.sparse.mm``; :func:`storage` measures what that saves on
disk. How fast the sparse product is, against the dense one, is measured by
:func:`course_utils.latency.matmul_latency`.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .masks import refresh_masks, remove_masks
from .metrics import state_dict_size
from .models import prunable_layers

__all__ = ["SparseLinear", "storage", "to_sparse"]


class SparseLinear(nn.Module):
    """A Linear layer whose weight is stored as a sparse CSR matrix (32-bit indices) and multiplied with
    ``torch.sparse.mm``: only the nonzero weights are stored and multiplied."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach()
        with warnings.catch_warnings():  # PyTorch says once per process that sparse CSR is a beta feature
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = w.to_sparse_csr()
            weight = torch.sparse_csr_tensor(csr.crow_indices().to(torch.int32), csr.col_indices().to(torch.int32),
                                             csr.values(), tuple(w.shape), check_invariants=True)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", weight)
        self.bias = nn.Parameter(linear.bias.detach().clone()) if linear.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        out = torch.sparse.mm(self.weight, x2.t()).t()
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        nnz = self.weight.values().numel()
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"nonzero={nnz} ({nnz / (self.in_features * self.out_features):.1%})")


def to_sparse(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose Linear layers store and multiply only their nonzero weights (CSR).

    Masks are made permanent first. Conv2d layers stay dense (PyTorch has no
    sparse convolution on the CPU). The copy is for measuring storage and
    inference time; train the masked model, not this one.
    """
    if not prunable_layers(model):
        raise ValueError("the model has no Linear or Conv2d layer")
    out = remove_masks(copy.deepcopy(refresh_masks(model)))
    for name, module in list(out.named_modules()):
        if isinstance(module, nn.Linear):
            parent_name, _, child = name.rpartition(".")
            parent = out.get_submodule(parent_name) if parent_name else out
            setattr(parent, child, SparseLinear(module))
    return out.eval()


def storage(model: nn.Module) -> dict[str, int]:
    """Bytes on disk of the model saved dense and saved with CSR Linear weights, each raw and zlib-compressed.

    Measured with ``cu.metrics.state_dict_size``. Zeros compress well, so the
    compressed dense file already shrinks with sparsity; CSR stores 4 bytes of
    value and 4 of column index per nonzero weight, so it wins raw only below
    50% density.
    """
    dense = state_dict_size(refresh_masks(model))
    sparse = state_dict_size(to_sparse(model))
    return {"dense_bytes": dense.raw, "dense_compressed_bytes": dense.compressed,
            "csr_bytes": sparse.raw, "csr_compressed_bytes": sparse.compressed}
