"""An isolation forest (Liu, Ting & Zhou 2008) built and evaluated all trees at once in numpy.

scikit-learn's ``IsolationForest`` builds its trees one by one in Python-driven Cython, which
costs tens of milliseconds for a thousand rows however small the trees; the detectors here train
one model per series, often, so this builds every tree of the forest level by level with array
operations instead. The algorithm is the paper's: each tree sees ``max_samples`` rows drawn
without replacement, grows to the height limit ``ceil(log2(max_samples))``, splits a node on a
random feature at a uniform random threshold between the node's minimum and maximum, and the
score of a row is ``2 ** (-E[h(x)] / c(max_samples))`` where ``h`` is the path length plus the
expected depth ``c(size)`` of the unbuilt subtree at the leaf.

Trees are stored as complete binary trees in heap order (children of node ``k`` at ``2k + 1``
and ``2k + 2``), so descending is index arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from allele.errors import ValidationError, check_int

FloatArray = npt.NDArray[np.float64]
_EULER = 0.5772156649015329


def _c(n: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The average path length of an unsuccessful search in a binary tree of ``n`` points."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    big = n > 2
    out[n == 2] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + _EULER) - 2.0 * (n[big] - 1.0) / n[big]
    return out


class FastIsolationForest:
    """``fit(X)``, then ``score_samples(X)`` (higher is more normal, as scikit-learn's)."""

    def __init__(
        self, n_estimators: int = 100, max_samples: int = 256, random_state: int | None = None
    ) -> None:
        self.n_estimators = check_int("n_estimators", n_estimators, 1, 100_000)
        self.max_samples = check_int("max_samples", max_samples, 2, 10**7)
        self.random_state = random_state
        self._fitted = False

    def fit(self, X: FloatArray) -> FastIsolationForest:
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValidationError(f"X must be a 2-d array of at least 2 rows, got shape {x.shape}")
        rng = np.random.default_rng(self.random_state)
        n, d = x.shape
        psi = min(self.max_samples, n)
        height = max(1, math.ceil(math.log2(psi)))
        trees, nodes = self.n_estimators, 2 ** (height + 1) - 1
        # Rows of each tree: a sample without replacement (argpartition of uniforms, per tree).
        rows = (
            np.argpartition(rng.random((trees, n), dtype=np.float32), psi - 1, axis=1)[:, :psi]
            if psi < n
            else np.tile(np.arange(n), (trees, 1))
        )
        # Indexed flat (tree * nodes + node, row * d + feature): one gather per array and level.
        base_rows = rows.ravel() * d
        tree_of = np.repeat(np.arange(trees), psi)
        feature = np.zeros(trees * nodes, dtype=np.int64)
        threshold = np.zeros(trees * nodes)
        leaf = np.ones(trees * nodes, dtype=bool)
        node = np.zeros(trees * psi, dtype=np.int64)  # node (within its tree) of each row
        xflat = x.ravel()
        active = np.arange(trees * psi)  # rows still in a node of the current level
        for depth in range(height):
            first, width = 2**depth - 1, 2**depth
            # Work on this level's nodes only: group = tree * width + (node - first).
            t_act, n_act = tree_of[active], node[active]
            group = t_act * width + (n_act - first)
            level = (np.arange(trees)[:, None] * nodes + np.arange(first, first + width)).ravel()
            q = rng.integers(0, d, size=trees * width)
            feature[level] = q
            data = xflat[base_rows[active] + q[group]]
            lo = np.full(trees * width, np.inf)
            hi = np.full(trees * width, -np.inf)
            np.minimum.at(lo, group, data)
            np.maximum.at(hi, group, data)
            splittable = (np.bincount(group, minlength=trees * width) > 1) & (hi > lo)
            low = np.where(splittable, lo, 0.0)  # empty nodes have lo = inf: keep them out
            cut = low + rng.random(trees * width) * (np.where(splittable, hi, 0.0) - low)
            threshold[level] = cut
            leaf[level] = ~splittable
            # Rows of a node that splits go to a child; the others stay where they are.
            moves = splittable[group]
            right = data >= cut[group]
            child = 2 * n_act + 1 + right
            moving = active[moves]
            node[moving] = child[moves]
            active = moving
        # Every row ends in a leaf; a leaf's size is the number of rows that ended there (only
        # leaves are ever read: a scored row always ends in one too).
        size = np.bincount(tree_of * nodes + node, minlength=trees * nodes).astype(np.float64)
        # For scoring, a child table over global node ids in which a leaf is its own child, so a
        # row that reached a leaf stays there; its depth is then read off its heap index.
        ids = np.arange(trees * nodes)
        local = ids % nodes
        inner = ~leaf & (2 * local + 2 < nodes)
        child = np.empty((trees * nodes, 2), dtype=np.int64)
        child[:, 0] = np.where(inner, ids + local + 1, ids)
        child[:, 1] = np.where(inner, ids + local + 2, ids)
        # int32 indices: scoring is gathers, and half the bytes is most of the speed.
        self._child = child.ravel().astype(np.int32)
        self._feature, self._threshold = feature.astype(np.int32), threshold
        depth_of = np.floor(np.log2(local + 1.0))
        self._leaf_value = depth_of + _c(size)  # path length of a row ending at each node
        self._height, self._psi, self._trees, self._nodes = height, psi, trees, nodes
        self._fitted = True
        return self

    def path_lengths(self, X: FloatArray) -> FloatArray:
        """The mean path length of each row over the trees."""
        if not self._fitted:
            raise ValidationError("FastIsolationForest must be fitted before scoring")
        x = np.asarray(X, dtype=np.float64)
        m, d = x.shape
        row = np.tile(np.arange(m, dtype=np.int32) * d, self._trees)
        roots = np.arange(self._trees, dtype=np.int32) * self._nodes
        node = np.repeat(roots, m)  # each row starts at each tree's root
        xflat, child, feature, threshold = x.ravel(), self._child, self._feature, self._threshold
        for _ in range(self._height):
            right = xflat[row + feature[node]] >= threshold[node]
            node = child[2 * node + right]
        depth = self._leaf_value[node]
        return np.asarray(depth.reshape(self._trees, m).mean(axis=0), dtype=np.float64)

    def score_samples(self, X: FloatArray) -> FloatArray:
        """Minus the paper's anomaly score ``2 ** (-E[h] / c(psi))``: higher is more normal."""
        if not self._fitted:
            raise ValidationError("FastIsolationForest must be fitted before scoring")
        c = float(_c(np.array([self._psi]))[0]) or 1.0
        return np.asarray(-(2.0 ** (-self.path_lengths(X) / c)), dtype=np.float64)
