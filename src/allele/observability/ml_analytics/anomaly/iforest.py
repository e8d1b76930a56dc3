"""An isolation forest (Liu, Ting & Zhou 2008) grown and evaluated for all trees at once in numpy.

scikit-learn's ``IsolationForest`` builds its trees one by one in Python-driven Cython, which
costs tens of milliseconds for a thousand rows however small the trees; the detectors here train
one model per series, often, so this grows every node of every tree of a level in one set of
array operations (one iteration per level, at most ``ceil(log2(max_samples))`` of them, never a
Python loop per tree or node). The algorithm is the paper's: each tree sees ``max_samples`` rows
drawn without replacement, grows to the height limit ``ceil(log2(max_samples))``, splits a node
on a random feature at a uniform random threshold between the node's minimum and maximum, and
the score of a row is ``2 ** (-E[h(x)] / c(psi))`` where ``h`` is the depth of the leaf the row
reaches plus the expected depth ``c(size)`` of the unbuilt subtree below it (``size`` training
rows ended there).

Layout: a level's nodes over all trees are numbered ``tree * 2**depth + node``, so the children
of node ``g`` are ``2g`` and ``2g + 1`` of the next level. A leaf above the height limit is kept
as a node that sends every row left (threshold +inf), so every row descends the full height to a
bottom node standing for its leaf, whose value is the leaf's depth plus ``c(size)``. Values are
float32 (half the bytes of every gather), in fitting and scoring alike, so both compare the same
numbers.

Scoring many rows does not walk them down one level at a time (eight gathers per row and tree);
it splits sets of rows, 64 to a machine word (``_bitset_paths``): a node's rows are a bitset, the
rows at or above its threshold are a bitset looked up by the threshold's rank in that feature's
sorted column, and one AND and one XOR give both children; only split nodes are carried (a
leaf's rows turn left from there on, a zero bit). The bits of each row's turns, read back level
by level, spell its bottom node. A few rows are walked down instead. Columns constant over the
training rows are left out (they split nothing; scikit-learn skips them too).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from allele.errors import ValidationError, check_int

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
_EULER = 0.5772156649015329
_BITSET_ROWS = 1024  # rows per bitset pass: 16 words a node, tables of d * 1025 * 16 words
_WALK_BELOW = 32  # fewer rows than this are walked down the trees instead
# The three swaps that transpose an 8 x 8 bit matrix held in a uint64 (bit 8r + c to 8c + r).
_TRANSPOSE8 = tuple(
    (np.uint64(s), np.uint64(m))
    for s, m in ((7, 0x00AA00AA00AA00AA), (14, 0x0000CCCC0000CCCC), (28, 0x00000000F0F0F0F0))
)


class _Scratch(threading.local):
    """Scratch arrays of the bitset scoring, kept per thread and reused by every forest.

    Scoring 1,000 rows needs a few megabytes of temporaries (the rank table and each level's
    row sets). Fresh, each is new memory from the OS that page-faults as it is first written,
    which on a VM cost as much as the scoring itself (~300 faults, ~0.9 ms a call); reused, the
    pages stay mapped. What a thread keeps is its largest scoring's scratch, at most
    ``_SCRATCH_LIMIT`` bytes (beyond that an array is allocated as usual and not kept).
    """

    def __init__(self) -> None:
        self.buffers: dict[str, npt.NDArray[np.uint8]] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        """An uninitialised array of ``shape`` and ``dtype``, reusing the buffer ``name``."""
        kind = np.dtype(dtype)
        nbytes = math.prod(shape) * kind.itemsize
        buffer = self.buffers.get(name)
        if buffer is None or len(buffer) < nbytes:
            if nbytes > _SCRATCH_LIMIT:
                return np.empty(shape, dtype=kind)
            buffer = self.buffers[name] = np.empty(nbytes, dtype=np.uint8)
        return buffer[:nbytes].view(kind).reshape(shape)


_SCRATCH_LIMIT = 8 << 20  # bytes per scratch array
_scratch = _Scratch()


def _c(n: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The average path length of an unsuccessful search in a binary tree of ``n`` points."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    big = n > 2
    out[n == 2] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + _EULER) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def _columns(X: FloatArray) -> npt.NDArray[np.float32]:
    """``X`` feature-major as float32: row ``f`` holds feature ``f`` of every row."""
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2 or len(x) < 1 or x.shape[1] < 1:
        raise ValidationError(f"X must be a non-empty 2-d array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValidationError("X must hold finite values only (no NaN or infinity)")
    return np.ascontiguousarray(x.T, dtype=np.float32)


def _subsamples(rng: np.random.Generator, trees: int, n: int, psi: int) -> IntArray:
    """Per tree ``psi`` distinct rows of ``n``, uniformly at random: the rows of the ``psi``
    least random keys (all rows when ``psi == n``)."""
    if psi >= n:
        return np.broadcast_to(np.arange(n), (trees, n))
    bits = max(1, (n - 1).bit_length())
    if bits <= 12:
        # Each key packs random bits above the row's index, so partitioning the keys themselves
        # (numpy's vectorised partition of uint32, several times faster than argpartition)
        # selects rows; a tie of the random parts (20 bits or more) is rare and only matters
        # at the boundary, where the index breaks it.
        packed = rng.bit_generator.random_raw((trees * n + 1) // 2).view(np.uint32)[: trees * n]
        packed = packed.reshape(trees, n) & np.uint32((0xFFFFFFFF >> bits) << bits)
        packed |= np.arange(n, dtype=np.uint32)
        least = np.partition(packed, psi - 1, axis=1)[:, :psi]
        return (least & np.uint32((1 << bits) - 1)).astype(np.intp)
    keys = rng.bit_generator.random_raw(trees * n).reshape(trees, n)
    return np.argpartition(keys, psi - 1, axis=1)[:, :psi]


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
        cols = _columns(X)
        if cols.shape[1] < 2:
            raise ValidationError(f"X must have at least 2 rows to fit, got {cols.shape[1]}")
        # A column constant over the training rows cannot split any node: the trees draw among
        # the others (as scikit-learn's do), all of them when every column is constant.
        varying = np.flatnonzero(cols.min(axis=1) < cols.max(axis=1))
        self._d = len(cols)
        self._columns_used = varying if len(varying) else np.arange(len(cols))
        cols = cols[self._columns_used]
        d, n = cols.shape
        trees = self.n_estimators
        psi = min(self.max_samples, n)
        height = max(1, math.ceil(math.log2(psi)))
        inner = trees * (2**height - 1)  # nodes above the bottom level, all trees
        # The random numbers of the fit: per node above the bottom a feature and a fraction of
        # the node's range; per tree a 32-bit key per row, its sample being the psi least keys.
        rng = np.random.default_rng(self.random_state)
        # One 64-bit draw a node: its top 24 bits the fraction (a float32's precision), its low
        # 32 bits the feature (scaled to [0, d) by a multiply and shift, no division).
        raw = rng.bit_generator.random_raw(inner)
        fraction = (raw >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
        feature = (((raw & np.uint64(0xFFFFFFFF)) * np.uint64(d)) >> np.uint64(32)).astype(np.intp)
        sample = _subsamples(rng, trees, n, psi)
        # Pairs (sampled row, tree), tree varying fastest: neighbouring pairs update different
        # nodes in the scatter-min/max below, which keeps its writes independent.
        rows = np.ascontiguousarray(sample.T).ravel()
        group = np.tile(np.arange(trees), psi)  # each pair's node in the current level
        xflat = cols.ravel()
        depth_of = np.zeros(trees, dtype=np.float32)  # depth of the leaf a node stands for
        cuts = np.full(inner, np.inf, dtype=np.float32)  # +inf: a leaf, rows pass left
        splits = []
        for depth in range(height):
            first, nodes = trees * (2**depth - 1), trees * 2**depth
            v = xflat[(feature[first : first + nodes] * n)[group] + rows]
            if depth:
                lo = np.full(nodes, np.inf, dtype=np.float32)
                hi = np.full(nodes, -np.inf, dtype=np.float32)
                np.minimum.at(lo, group, v)
                np.maximum.at(hi, group, v)
            else:  # one node a tree, the pairs tree-fastest: a column-wise reduction
                lo, hi = v.reshape(psi, trees).min(axis=0), v.reshape(psi, trees).max(axis=0)
            # Splits: two distinct values at least (an empty node has lo=inf > hi=-inf), and
            # not below a leaf, whose rows all pass to its left child.
            split = (hi > lo) & (depth_of == depth)
            ids = np.flatnonzero(split)
            splits.append(ids)
            cuts[first + ids] = lo[ids] + fraction[first + ids] * (hi[ids] - lo[ids])
            right = v >= cuts[first : first + nodes][group]
            group <<= 1
            group += right
            depth_of = np.repeat(np.where(split, np.float32(depth + 1), depth_of), 2)
        # Training rows that ended in each bottom node: the size of the leaf it stands for.
        size = np.bincount(group, minlength=trees * 2**height)
        self._leaf_value = depth_of + _c(np.arange(psi + 1.0)).astype(np.float32)[size]
        self._feature, self._cuts = feature, cuts
        self._height, self._psi = height, psi
        self._prepare_bitsets(splits, d)
        self._fitted = True
        return self

    def _prepare_bitsets(self, splits: list[IntArray], d: int) -> None:
        """What scoring by bitsets needs of the split nodes of each level (see below)."""
        trees = self.n_estimators
        slots = np.concatenate([trees * (2**depth - 1) + ids for depth, ids in enumerate(splits)])
        # Split nodes grouped by feature, in increasing threshold within a feature: scoring runs
        # one binary search per feature, of sorted thresholds (each search starts from the last
        # one's answer, about twice as fast as searching them in any order). The key is the
        # feature above the threshold's float32 bits made order-preserving as an unsigned int.
        feature = self._feature[slots]
        bits = self._cuts[slots].view(np.uint32)
        bits = np.where(bits >> np.uint32(31), ~bits, bits | np.uint32(0x80000000))
        self._split_order = np.argsort((feature.astype(np.uint64) << np.uint64(32)) | bits)
        self._split_cut = self._cuts[slots][self._split_order]
        self._split_feature = feature[self._split_order]
        self._feature_bounds = np.searchsorted(self._split_feature, np.arange(d + 1))
        self._bitset_levels = []
        offset = 0
        for depth, ids in enumerate(splits):
            tree = ids >> depth  # ids are sorted, so each tree's nodes are consecutive
            starts = np.flatnonzero(np.concatenate(([len(ids) > 0], tree[1:] != tree[:-1])))
            following = splits[depth + 1] if depth + 1 < len(splits) else ids[:0]
            # Where each split node of the next level is among this level's children, stored
            # left children first: side * (this level's count) + its parent's position.
            select = (following & 1) * len(ids) + np.searchsorted(ids, following >> 1)
            self._bitset_levels.append((offset, len(ids), starts, tree[starts], select))
            offset += len(ids)

    def path_lengths(self, X: FloatArray) -> FloatArray:
        """The mean path length of each row over the trees."""
        if not self._fitted:
            raise ValidationError("FastIsolationForest must be fitted before scoring")
        cols = _columns(X)
        if len(cols) != self._d:
            raise ValidationError(f"X must have {self._d} columns (as fitted), got {len(cols)}")
        cols = cols[self._columns_used]
        m = cols.shape[1]
        if m < _WALK_BELOW:
            return self._walk(cols)
        return np.concatenate(
            [self._bitset_paths(cols[:, s : s + _BITSET_ROWS]) for s in range(0, m, _BITSET_ROWS)]
        )

    def score_samples(self, X: FloatArray) -> FloatArray:
        """Minus the paper's anomaly score ``2 ** (-E[h] / c(psi))``: higher is more normal."""
        path = self.path_lengths(X)
        c = float(_c(np.array([self._psi]))[0]) or 1.0
        return np.asarray(-(2.0 ** (-path / c)), dtype=np.float64)

    def fit_score_samples(self, X: FloatArray) -> FloatArray:
        """``fit(X).score_samples(X)``."""
        return self.fit(X).score_samples(X)

    def _bottom_mean(self, bottom: IntArray) -> FloatArray:
        """Mean over trees of the value of each row's bottom node (``bottom``: trees x rows)."""
        path = self._leaf_value[bottom]
        return np.asarray(path.mean(axis=0, dtype=np.float64), dtype=np.float64)

    def _walk(self, cols: npt.NDArray[np.float32]) -> FloatArray:
        """Path lengths by walking each (tree, row) pair down one level at a time."""
        m = cols.shape[1]
        trees, xflat, rows = self.n_estimators, cols.ravel(), np.arange(m)
        group: IntArray = np.broadcast_to(np.arange(trees)[:, None], (trees, m))
        for depth in range(self._height):
            first, nodes = trees * (2**depth - 1), trees * 2**depth
            q, cut = self._feature[first : first + nodes], self._cuts[first : first + nodes]
            group = 2 * group + (xflat[(q * m)[group] + rows] >= cut[group])
        return self._bottom_mean(group)

    def _bitset_paths(self, cols: npt.NDArray[np.float32]) -> FloatArray:
        """Path lengths of up to ``_BITSET_ROWS`` rows by splitting bitsets of rows.

        Row ``r`` is bit ``r % 64`` of word ``r // 64``. ``table[f, j]`` is the set of rows
        whose feature ``f`` ranks at ``m - j`` or above in its sorted column (``j = 0``: none),
        so the rows at or above a threshold are one row of the table, found by a binary search
        of the threshold in the sorted column. Only split nodes are carried: the rows of a leaf
        turn left from there on, which is what a zero bit says.
        """
        d, m = cols.shape
        words = (m + 63) // 64
        trees, height = self.n_estimators, self._height
        order = np.argsort(cols, axis=1, kind="stable")
        ranked = np.take_along_axis(cols, order, axis=1)
        bounds, cut = self._feature_bounds, self._split_cut
        rank = np.concatenate(
            [np.searchsorted(ranked[f], cut[bounds[f] : bounds[f + 1]]) for f in range(d)]
        )
        lookup = np.empty(len(cut), dtype=np.intp)
        lookup[self._split_order] = self._split_feature * (m + 1) + (m - rank)
        onehot = _scratch.array("table", (d, m + 1, words), np.uint64)
        onehot.fill(0)
        bit = np.left_shift(np.uint64(1), (order & 63).astype(np.uint64))
        onehot[np.arange(d)[:, None], (m - np.arange(m))[None, :], order >> 6] = bit
        table = np.bitwise_or.accumulate(onehot, axis=1, out=onehot).reshape(d * (m + 1), words)
        row_set = np.dtype((np.void, 8 * words))  # one item a set of rows
        table_rows = table.view(row_set).ravel()
        levels = 8 * ((height + 7) // 8)  # turns in whole bytes, the unused levels zero
        turns = np.zeros((trees, levels, words), dtype=np.uint64)  # rows turning right
        first_nodes = self._bitset_levels[0][1]
        sets = _scratch.array("sets0", (first_nodes, words), np.uint64)
        sets.fill(np.uint64(2**64 - 1))
        if m % 64:
            sets[:, -1] = np.uint64((1 << (m % 64)) - 1)
        for depth, (offset, nodes, starts, present, select) in enumerate(self._bitset_levels):
            if not nodes:
                break
            above = _scratch.array("above", (nodes,), row_set)
            np.take(table_rows, lookup[offset : offset + nodes], out=above)
            children = _scratch.array("children", (2, nodes, words), np.uint64)
            right = np.bitwise_and(
                sets, above.view(np.uint64).reshape(nodes, words), out=children[1]
            )
            # A level's nodes partition each tree's rows: their OR is the level's turns.
            turns[present, depth] = np.bitwise_or.reduceat(right, starts, axis=0)
            np.bitwise_xor(sets, right, out=children[0])
            flat = children.reshape(2 * nodes, words).view(row_set).ravel()
            # The next level's sets, in the buffer this level's sets did not use.
            following = _scratch.array(f"sets{(depth + 1) % 2}", (len(select),), row_set)
            np.take(flat, select, out=following)
            sets = following.view(np.uint64).reshape(len(select), words)
        # Each row's turns, first level first, are the bits of its bottom node: per tree and
        # byte of rows, transpose the 8 x 8 bit matrix (levels x rows) of each group of levels.
        bottom = np.empty((0, m), dtype=np.intp)  # the first group of levels sets it
        for g in range(0, levels, 8):
            block = turns[:, g : g + 8].view(np.uint8)[:, ::-1].transpose(0, 2, 1)
            x = np.ascontiguousarray(block).view(np.uint64)
            for shift, mask in _TRANSPOSE8:
                t = (x ^ (x >> shift)) & mask
                x ^= t ^ (t << shift)
            byte = x.view(np.uint8).reshape(trees, -1)[:, :m]
            if g:
                bottom <<= 8
                bottom |= byte
            else:
                bottom = byte.astype(np.intp)
        if levels > height:
            bottom >>= levels - height
        bottom += (np.arange(trees) << height)[:, None]
        return self._bottom_mean(bottom)
