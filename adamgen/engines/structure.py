"""The sparse structure of patch data, read off the dense arrays.

In the feature–noise patch model the signal patch y·v is 1-sparse and a noise patch ξ is
(s + 1)-sparse out of d, so ⟨w, x_p⟩ and its gradient only need the nonzero coordinates. This
module stores each (example, patch) row's nonzeros in CSR form; it looks only at the numbers,
so it serves any data. Whether a data model is sparse enough is its registry row's `sparse`.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class PatchCSR:
    """Rows are (example, patch) pairs, row = i·P + p; entries ptr[row]:ptr[row + 1]."""

    ptr: np.ndarray  # [N·P + 1] int64
    idx: np.ndarray  # [nnz] int64, coordinates k
    val: np.ndarray  # [nnz] float64, x_{i,p}[k]
    patches: int
    d: int

    @property
    def n(self) -> int:
        return (len(self.ptr) - 1) // self.patches

    @property
    def density(self) -> float:
        return len(self.idx) / max(1, (len(self.ptr) - 1) * self.d)


def to_csr(x: np.ndarray) -> PatchCSR:
    """x: [N, P, d] dense → CSR over (example, patch) rows, coordinates ascending."""
    N, P, d = x.shape
    rows = x.reshape(N * P, d)
    nonzero = rows != 0
    ptr = np.zeros(N * P + 1, dtype=np.int64)
    np.cumsum(nonzero.sum(axis=1), out=ptr[1:])
    row_of, idx = np.nonzero(nonzero)  # row-major: rows in order, coordinates ascending
    return PatchCSR(ptr=ptr, idx=idx.astype(np.int64), val=rows[row_of, idx], patches=P, d=d)


def to_dense(csr: PatchCSR) -> np.ndarray:
    rows = np.zeros(((len(csr.ptr) - 1), csr.d))
    row_of = np.repeat(np.arange(len(csr.ptr) - 1), np.diff(csr.ptr))
    rows[row_of, csr.idx] = csr.val
    return rows.reshape(-1, csr.patches, csr.d)

