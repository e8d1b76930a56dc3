"""The alert distance as sparse pairs and DBSCAN over them: the same results as the dense
matrix and scikit-learn's DBSCAN."""

from __future__ import annotations

import numpy as np
import pytest

from allele.observability.ml_analytics.alert_intelligence import clustering
from allele.observability.ml_analytics.alert_intelligence.topology import Topology


def _pairs_from_dense(d: np.ndarray) -> clustering.Pairs:
    i, j = np.triu_indices(d.shape[0], k=1)
    near = d[i, j] < 1.0
    return clustering.Pairs(d.shape[0], i[near], j[near], d[i, j][near])


def _sklearn_dbscan(d: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    labels = np.asarray(
        DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit(d).labels_
    )
    noise = np.flatnonzero(labels < 0)
    if noise.size:  # noise within eps of one another: their own groups, as ours
        sub = clustering._connected(d[np.ix_(noise, noise)] <= eps)
        labels[noise] = labels.max(initial=-1) + 1 + sub
    return labels


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs_a = {(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    # a bijection between the labels: each label of a maps to one of b and back
    return len(pairs_a) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("min_samples", [2, 3, 5])
def test_dbscan_over_pairs_matches_scikit_learn(seed: int, min_samples: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 6, size=(120, 2))
    d = np.minimum(1.0, np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1)))
    ours = clustering._dbscan(_pairs_from_dense(d), 0.5, min_samples)
    theirs = _sklearn_dbscan(d, 0.5, min_samples)
    assert _same_partition(ours, theirs)
    assert len(set(ours.tolist())) > 3  # a real partition, not everything in one group


def test_simple_is_the_eps_connected_groups() -> None:
    d = np.ones((5, 5))
    np.fill_diagonal(d, 0.0)
    d[0, 1] = d[1, 0] = 0.3
    d[1, 2] = d[2, 1] = 0.5
    d[3, 4] = d[4, 3] = 0.6  # beyond eps
    labels = clustering.cluster(_pairs_from_dense(d), "simple", 0.5, 2)
    assert labels[0] == labels[1] == labels[2]
    assert len({labels[0], labels[3], labels[4]}) == 3


def test_pairs_cover_every_pair_closer_than_the_time_scale() -> None:
    rng = np.random.default_rng(1)
    n = 300
    t = np.sort(rng.uniform(0, 20_000, n))[rng.permutation(n)]  # unsorted input
    comps = [f"c{k}" for k in rng.integers(0, 4, n)]
    topology = Topology({"c1": ["c0"], "c2": ["c1"]})
    count = rng.integers(1, 3, n).tolist()
    f = clustering.features(t.tolist(), comps, ["latency"] * n, ["spike"] * n, count=count)
    pairs = clustering.distance_pairs(f, topology, time_scale_s=600.0, lag_s=60.0)
    d = pairs.dense()
    assert np.array_equal(d, d.T) and np.all(np.diag(d) == 0.0)
    assert np.all(pairs.i < pairs.j) and np.all(pairs.d < 1.0)
    gap = np.abs(t[:, None] - t[None, :])
    assert np.all(d[gap >= 600.0] == 1.0)  # far apart in time: never neighbours
    # every pair closer in time, on one component, both seen twice, is listed, by the time part
    same = (np.array(comps)[:, None] == np.array(comps)[None, :]) & (gap < 600.0)
    sustained = np.array(count) > 1
    same &= sustained[:, None] & sustained[None, :]
    np.fill_diagonal(same, False)
    assert same.sum() > 50
    np.testing.assert_allclose(d[same], (gap / 600.0)[same])
    # a one-off alert is at 1 from every alert starting more than lag_s after it
    one_off = ~sustained
    later = one_off[:, None] & ((t[None, :] - t[:, None]) > 60.0)
    assert np.all(d[later] == 1.0)
    # the group of members' own distance matrix is the dense one's block
    members = np.array([0, 5, 7, 42])
    np.testing.assert_array_equal(pairs.within(members), d[np.ix_(members, members)])
