"""The reservoir's numerics: when a sparse recurrent product beats a dense one (the measured
cost model), the spectral radius, the ridge readout and the array checks."""

from __future__ import annotations

import numpy as np

from allele.errors import ValidationError

# Cost model of one recurrent product on one core, in microseconds (see prefers_sparse).
_CSR_CALL_US, _CSR_PER_NNZ_US = 2.5, 0.0005
_DENSE_CALL_US, _DENSE_IN_CACHE_US, _DENSE_OUT_OF_CACHE_US = 1.0, 0.0001, 0.00028
_DENSE_CACHE_BYTES = 2 * 1024 * 1024
#: Reservoirs up to this size get their spectral radius from dense LAPACK eigenvalues; larger
#: ones from ARPACK (dense eig costs 0.5 s at 1000 units on one idle core, far more when busy).
DENSE_EIG_UP_TO = 400
#: ``aprocess_sequence`` runs inline below this many unit-steps (thread hand-off costs more).
INLINE_WORK = 20_000


def prefers_sparse(n: int, nnz: int) -> bool:
    """True when a CSR matvec of an ``n x n`` matrix with ``nnz`` non-zeros beats dense gemv.

    Measured on one core (``np.dot(x, W.T, out=)`` vs ``csr @ x``, then adding the drive): CSR
    costs about 2.5 us of call overhead plus 0.5 ns per non-zero whatever the size; dense gemv
    costs about 1 us plus 0.1 ns per entry while the matrix fits in cache (n <= 512) and
    0.28 ns beyond. So at connectivity 0.1, 100 units stay dense (2.0 vs 3.0 us) and 400 and
    1000 units go sparse (10 vs 19 us, 44 vs 280 us); at connectivity 0.3, 400 units stay dense
    (11 vs 22 us), and a fully connected 1000-unit reservoir is dense (282 vs 549 us).
    """
    per_entry = _DENSE_IN_CACHE_US if n * n * 8 <= _DENSE_CACHE_BYTES else _DENSE_OUT_OF_CACHE_US
    dense = _DENSE_CALL_US + per_entry * n * n
    return _CSR_CALL_US + _CSR_PER_NNZ_US * nnz < dense


# -- numerics --------------------------------------------------------------------------------
def _float_array(value: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be an array of numbers, got {value!r:.80}") from exc
    if not np.isfinite(arr).all():
        raise ValidationError(f"{name} contains NaN or infinite values")
    return arr


def _spectral_radius(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int) -> float:
    """Largest eigenvalue modulus of the sparse matrix given by (rows, cols, data)."""
    if n <= DENSE_EIG_UP_TO:
        dense = np.zeros((n, n))
        dense[rows, cols] = data
        return float(np.abs(np.linalg.eigvals(dense)).max())
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import ArpackNoConvergence, eigs

    matrix = csr_matrix((data, (rows, cols)), shape=(n, n))
    # Several eigenvalues, not one, and a fixed start vector so the result is reproducible.
    # A wide Krylov space (ncv=80) matters: the spectrum of a random matrix fills a disc, so
    # many eigenvalues share nearly the largest modulus and a narrow one can miss the top.
    start = np.random.default_rng(n).standard_normal(n)
    try:
        values = eigs(
            matrix, k=8, ncv=min(n - 1, 80), which="LM", tol=1e-14, maxiter=50 * n, v0=start,
            return_eigenvectors=False,
        )  # fmt: skip
    except ArpackNoConvergence:  # rare; the dense route is slow but exact
        return float(np.abs(np.linalg.eigvals(matrix.toarray())).max())
    return float(np.abs(values).max())


def _ridge(states: np.ndarray, targets: np.ndarray, lam: float) -> np.ndarray:
    """Readout ``(1 + n) x k``: row 0 the bias, then the weights; the bias is not penalised."""
    features = np.hstack([np.ones((len(states), 1)), states])
    gram = features.T @ features
    penalty = np.full(len(gram), lam)
    penalty[0] = 0.0
    gram[np.diag_indices_from(gram)] += penalty
    from scipy.linalg import solve

    return np.asarray(solve(gram, features.T @ targets, assume_a="pos"))
