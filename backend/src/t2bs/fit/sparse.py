"""Constant sparse matrices of the fit (skinning, the mesh Laplacian) and their fast products."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor


def csr_from_triplets(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> Tensor:
    """A sparse [R, K] float32 matrix in CSR layout from (row, column, value) triplets; duplicates sum.

    CSR rather than COO: its product with a dense matrix runs about 2x faster on the CPU, and the
    fit takes such products every step.
    """
    coo = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([rows, cols]).astype(np.int64)),
        torch.from_numpy(np.asarray(values, dtype=np.float32)),
        shape,
        check_invariants=False,
    ).coalesce()
    with warnings.catch_warnings():
        # "Sparse CSR tensor support is in beta state": the one product used here is long stable.
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        return coo.to_sparse_csr()


def transposed_csr(matrix: Tensor) -> Tensor:
    """The CSR transpose [K, R] of a CSR matrix [R, K]."""
    coo = matrix.to_sparse_coo()
    rows, cols = coo.indices().cpu().numpy()
    values = coo.values().cpu().numpy()
    return csr_from_triplets(cols, rows, values, (matrix.shape[1], matrix.shape[0])).to(matrix.device)


class _Product(torch.autograd.Function):
    """M @ X for a constant CSR matrix M. Autograd's own backward of that product builds M's
    transpose in CSR on every call (about 5 ms each for the skinning matrix on 2 CPU cores); the
    transpose is made once instead and passed in."""

    @staticmethod
    def forward(ctx: Any, matrix: Tensor, transposed: Tensor, dense: Tensor) -> Tensor:
        ctx.transposed = transposed
        return matrix @ dense

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, ctx.transposed @ grad


def sparse_product(matrix: Tensor, transposed: Tensor, dense: Tensor) -> Tensor:
    """matrix [R, K] (CSR) @ dense [K, M] -> [R, M], differentiable in `dense`; `transposed` is
    `transposed_csr(matrix)`."""
    return _Product.apply(matrix, transposed, dense)


class SparseMatrix:
    """A constant sparse [R, K] matrix for products with dense matrices that need gradients."""

    def __init__(self, matrix: Tensor, transposed: Tensor | None = None) -> None:
        self.matrix = matrix
        self.transposed = transposed_csr(matrix) if transposed is None else transposed

    @classmethod
    def from_scipy(cls, matrix: Any, device: torch.device) -> SparseMatrix:
        coo = matrix.tocoo()
        return cls(csr_from_triplets(coo.row, coo.col, coo.data, coo.shape).to(device))

    def __matmul__(self, dense: Tensor) -> Tensor:
        return sparse_product(self.matrix, self.transposed, dense)
