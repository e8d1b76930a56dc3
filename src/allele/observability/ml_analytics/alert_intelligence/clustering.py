"""The alert distance and the clustering algorithms over it.

Two alerts are close when they happened close in time, on components that depend on one another
(the topology), with the same metric and anomaly type and the same labels. Each of three parts
is a distance in [0, 1]:

* time: ``|t_i - t_j| / time_scale_s``, at most 1 (the scale is a sixth of the correlation
  window: ten minutes for the default hour);
* topology: 0 on one component, ``0.15 + 0.1 * (steps - 1)`` (at most 0.55) when one depends on
  the other, 1 when neither depends on the other (two branches that share a dependent fail for
  two reasons), 0.15 between different components the topology does not know (as if adjacent);
* attributes: 0.15 when the metrics differ, 0.1 when the anomaly types differ, 0.05 times the
  Jaccard distance of the label pairs;

and they combine as independent reasons to be apart: ``d = 1 - (1 - time)(1 - topology)
(1 - attributes)``. So alerts far apart in time, or on unrelated components, are at distance 1
whatever else they share, and a dependent detected two minutes after its dependency is well
within the default ``eps`` of 0.5. An alert seen only once is at distance 1 from every alert
that started more than ``lag_s`` after it (a blip does not found a later incident's cluster).

Only pairs closer than ``time_scale_s`` in time can be below distance 1, so the distances are
kept as those pairs (``Pairs``, found by a sweep over the alerts sorted by time) and the dense
matrix is built only for the algorithms that need it.

``dbscan`` (scikit-learn's DBSCAN result computed over the sparse eps-neighbourhood graph, a
vectorised scan that is ten times faster than scikit-learn's on 500 alerts; noise alerts within
``eps`` of each other are joined, the rest stay alone), ``hierarchical`` (average linkage cut
at ``eps``), ``kmeans`` (on a classical-MDS embedding of the distances, with as many centroids
as there are ``eps``-connected groups) and ``simple`` (the ``eps``-connected groups: single
linkage, no dependency). After any of them, a group whose sustained alerts (seen more than once)
have more than one *topological root* (a component no other such component of the group is
upstream of) is split by root: two branches failing at once are two incidents even when they
share dependents.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from allele.observability.ml_analytics.alert_intelligence.topology import Topology

#: The attribute part's weights (see the module docstring).
WEIGHTS = {"metric": 0.15, "anomaly_type": 0.1, "labels": 0.05}
#: Topology distance between two components the topology does not know.
UNKNOWN_TOPOLOGY = 0.15


@dataclass
class AlertFeatures:
    """The alerts of one batch as arrays (one row per alert)."""

    t: np.ndarray  # epoch seconds
    component: list[str]
    metric: np.ndarray  # integer codes
    anomaly_type: np.ndarray  # integer codes
    labels: list[frozenset[tuple[str, str]]]
    count: np.ndarray  # anomalies each alert stands for (1: seen once)

    def __len__(self) -> int:
        return len(self.component)


def _codes(values: list[str]) -> np.ndarray:
    table: dict[str, int] = {}
    return np.array([table.setdefault(v, len(table)) for v in values], dtype=np.int64)


def features(
    t: list[float],
    component: list[str],
    metric: list[str],
    anomaly_type: list[str],
    labels: list[frozenset[tuple[str, str]]] | None = None,
    count: list[int] | None = None,
) -> AlertFeatures:
    return AlertFeatures(
        t=np.asarray(t, dtype=np.float64),
        component=list(component),
        metric=_codes(metric),
        anomaly_type=_codes(anomaly_type),
        labels=labels if labels is not None else [frozenset()] * len(component),
        count=np.asarray(count if count is not None else [1] * len(component), dtype=np.int64),
    )


def component_distances(names: list[str], topology: Topology) -> np.ndarray:
    """The topology part of the distance between every two of ``names``."""
    k = len(names)
    out = np.full((k, k), UNKNOWN_TOPOLOGY)
    idx = np.array([topology.index.get(n, -1) for n in names])
    known = idx >= 0
    if known.any():
        sub = np.ix_(np.flatnonzero(known), np.flatnonzero(known))
        hops = topology.chain_hops[np.ix_(idx[known], idx[known])]
        out[sub] = np.where(hops < 0, 1.0, np.minimum(0.55, 0.15 + 0.1 * (hops - 1)))
    np.fill_diagonal(out, 0.0)
    return out


@dataclass
class Pairs:
    """The alert pairs at distance below 1, as arrays (``i < j``); every other pair of the
    ``n`` alerts is at distance 1 (and an alert at 0 from itself)."""

    n: int
    i: np.ndarray
    j: np.ndarray
    d: np.ndarray

    def dense(self) -> np.ndarray:
        """The full ``n x n`` distance matrix."""
        out = np.ones((self.n, self.n))
        out[self.i, self.j] = self.d
        out[self.j, self.i] = self.d
        np.fill_diagonal(out, 0.0)
        return out

    def within(self, members: np.ndarray) -> np.ndarray:
        """The distance matrix among ``members`` (alert indices), in their order."""
        local = np.full(self.n, -1)
        local[members] = np.arange(members.size)
        li, lj = local[self.i], local[self.j]
        both = (li >= 0) & (lj >= 0)
        out = np.ones((members.size, members.size))
        out[li[both], lj[both]] = self.d[both]
        out[lj[both], li[both]] = self.d[both]
        np.fill_diagonal(out, 0.0)
        return out

    def edges(self, eps: float) -> tuple[np.ndarray, np.ndarray]:
        """The pairs within ``eps`` of each other."""
        close = self.d <= eps
        return self.i[close], self.j[close]


def distance_pairs(
    f: AlertFeatures, topology: Topology, time_scale_s: float, lag_s: float = 60.0
) -> Pairs:
    """The alert distances below 1 (see the module docstring), as pairs.

    Alerts ``time_scale_s`` or more apart are at distance 1 whatever else they share, so only
    the pairs closer in time are computed: over the alerts sorted by time, each alert's
    candidates are the run of later alerts up to ``time_scale_s`` after it."""
    n = len(f)
    names, comp = np.unique(np.asarray(f.component, dtype=object), return_inverse=True)
    cd = component_distances([str(x) for x in names], topology)
    # Everything but time depends only on (component, metric, anomaly type): compute it once
    # per distinct pair of those (a few dozen), then gather it for the candidate pairs.
    kinds = (comp * (int(f.metric.max(initial=0)) + 1) + f.metric) * (
        int(f.anomaly_type.max(initial=0)) + 1
    ) + f.anomaly_type
    _, first, kind = np.unique(kinds, return_index=True, return_inverse=True)
    kc, km, kt = comp[first], f.metric[first], f.anomaly_type[first]
    attr = WEIGHTS["metric"] * (km[:, None] != km[None, :])
    attr = attr + WEIGHTS["anomaly_type"] * (kt[:, None] != kt[None, :])
    table = (1.0 - cd[kc[:, None], kc[None, :]]) * (1.0 - attr)
    # The sorted sweep: position p pairs with positions p+1 .. end[p]-1.
    order = np.argsort(f.t, kind="stable")
    ts = f.t[order]
    end = np.searchsorted(ts, ts + time_scale_s, side="left")
    runs = np.maximum(end - np.arange(n) - 1, 0)
    p = np.repeat(np.arange(n), runs)
    starts = np.cumsum(runs) - runs
    q = p + 1 + (np.arange(p.size) - np.repeat(starts, runs))
    a, b = order[p], order[q]
    keep = table[kind[a], kind[b]]
    if any(f.labels):
        index, m = _label_distances(f.labels)
        keep *= 1.0 - WEIGHTS["labels"] * m[index[a], index[b]]
    gap = f.t[b] - f.t[a]  # t_b - t_a
    keep *= np.maximum(0.0, 1.0 - np.abs(gap) / time_scale_s)
    # A one-off anomaly (seen once, never again) explains nothing that starts more than lag_s
    # after it: a blip must not found the cluster of a later incident.
    one_off = f.count <= 1
    keep[(one_off[a] & (gap > lag_s)) | (one_off[b] & (-gap > lag_s))] = 0.0
    near = keep > 0.0
    a, b, keep = a[near], b[near], keep[near]
    swap = a > b
    i, j = np.where(swap, b, a), np.where(swap, a, b)
    return Pairs(n, i, j, 1.0 - keep)


def distance_matrix(
    f: AlertFeatures, topology: Topology, time_scale_s: float, lag_s: float = 60.0
) -> np.ndarray:
    """Pairwise alert distances in [0, 1] (see the module docstring)."""
    return distance_pairs(f, topology, time_scale_s, lag_s).dense()


def _label_distances(labels: list[frozenset[tuple[str, str]]]) -> tuple[np.ndarray, np.ndarray]:
    # Few distinct label sets in practice: the Jaccard distance per distinct pair, and each
    # alert's index into it.
    distinct = list(dict.fromkeys(labels))
    where = {s: i for i, s in enumerate(distinct)}
    m = np.zeros((len(distinct), len(distinct)))
    for i, a in enumerate(distinct):
        for j in range(i + 1, len(distinct)):
            b = distinct[j]
            union = len(a | b)
            m[i, j] = m[j, i] = 1.0 - len(a & b) / union if union else 0.0
    return np.array([where[s] for s in labels]), m


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component labels of the ``n`` nodes joined by the edges ``i``-``j``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


def _connected(adjacency: np.ndarray) -> np.ndarray:
    i, j = np.nonzero(adjacency)
    return _components(adjacency.shape[0], i, j)


def cluster(pairs: Pairs, algorithm: str, eps: float, min_samples: int) -> np.ndarray:
    """Cluster labels (0..k-1) of the alerts whose distances are ``pairs``."""
    n = pairs.n
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    if algorithm == "simple":
        return _components(n, *pairs.edges(eps))
    if algorithm == "dbscan":
        return _dbscan(pairs, eps, min_samples)
    if algorithm == "hierarchical":
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(
            n_clusters=None, distance_threshold=eps, metric="precomputed", linkage="average"
        )
        return np.asarray(model.fit_predict(pairs.dense()))
    if algorithm == "kmeans":
        return _kmeans(pairs.dense(), eps)
    raise ValueError(f"unknown clustering algorithm {algorithm!r}")


def _dbscan(pairs: Pairs, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN over the eps-neighbourhood graph, with scikit-learn's result: clusters are the
    connected groups of core points (at least ``min_samples`` neighbours within ``eps``,
    itself included); a border point joins the cluster that scikit-learn's scan in index
    order reaches first, the one whose lowest-index core point is lowest. Then, as incidents
    smaller than ``min_samples`` are still incidents, noise alerts within eps of one another
    form their own small groups."""
    n = pairs.n
    i, j = pairs.edges(eps)
    degree = 1 + np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    core = degree >= min_samples
    both = core[i] & core[j]
    comp = _components(n, i[both], j[both])
    # every core point's cluster, identified by its lowest-index core point
    lowest = np.full(n, n)
    np.minimum.at(lowest, comp[core], np.flatnonzero(core))
    leader = np.where(core, lowest[comp], n)
    # border points: the lowest leader among their core neighbours
    reach = np.full(n, n)
    to_j = core[i] & ~core[j]
    to_i = core[j] & ~core[i]
    np.minimum.at(reach, j[to_j], leader[i[to_j]])
    np.minimum.at(reach, i[to_i], leader[j[to_i]])
    leader = np.where(core, leader, reach)
    labels = np.full(n, -1, dtype=np.int64)
    clustered = leader < n
    if clustered.any():
        _, labels[clustered] = np.unique(leader[clustered], return_inverse=True)
    noise = ~clustered
    if noise.any():
        alone = noise[i] & noise[j]
        sub = _components(n, i[alone], j[alone])
        _, packed = np.unique(sub[noise], return_inverse=True)
        labels[noise] = labels.max(initial=-1) + 1 + packed
    return labels


def _kmeans(d: np.ndarray, eps: float) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    n = d.shape[0]
    k = int(_connected(d <= eps).max()) + 1  # as many centroids as eps-connected groups
    if k < 2 or k >= n:
        return _connected(d <= eps)
    # Classical MDS: coordinates whose Euclidean distances approximate d.
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d**2) @ j
    values, vectors = np.linalg.eigh(b)
    keep = np.argsort(values)[::-1][: min(8, n)]
    keep = keep[values[keep] > 1e-9]
    coords = vectors[:, keep] * np.sqrt(values[keep]) if keep.size else np.zeros((n, 1))
    with warnings.catch_warnings():
        # Repeated alerts sit on one point; fewer distinct clusters than k is expected.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.asarray(KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(coords))


def split_by_root(
    labels: np.ndarray, f: AlertFeatures, pairs: Pairs, topology: Topology, lag_s: float
) -> np.ndarray:
    """Split every group with several topological roots into one group per root.

    The alerts on a root's component start its group; every other alert, in time order, joins
    the group of its nearest alert (by ``d``) among those already placed on a component upstream
    of its own (of the same component when there is none): a symptom is explained by the
    closest cause above it. An alert
    with no such neighbour goes to the latest root first seen before it (allowing ``lag_s`` of
    detection lag), and one the topology does not know stays in the first group.
    """
    if not topology.known or labels.size == 0:
        return labels
    out = labels.copy()
    next_label = int(labels.max(initial=-1)) + 1
    # Only groups with sustained alerts on two or more known components can have two roots.
    at = np.array([topology.index.get(c, -1) for c in f.component])
    candidate = (f.count > 1) & (at >= 0)
    k = len(topology.names)
    group = np.unique(labels[candidate] * k + at[candidate]) // k  # one per (group, component)
    several = np.unique(group[1:][np.diff(group) == 0])
    t, count = f.t.tolist(), f.count.tolist()  # plain floats: cheaper in the loops below
    for label in several.tolist():
        where = np.flatnonzero(labels == label)
        members = where.tolist()
        # Only components with a sustained alert (seen more than once) can be a root of their
        # own: a one-off anomaly upstream does not explain a sustained cascade.
        sustained = {f.component[i] for i in members if count[i] > 1}
        known = [c for c in sustained if c in topology]
        roots = [c for c in known if not any(topology.is_upstream(o, c) for o in known if o != c)]
        if len(roots) < 2:
            continue
        first = {r: min(t[i] for i in members if f.component[i] == r) for r in roots}
        roots.sort(key=lambda r: first[r])
        new_label = {r: (int(label) if k == 0 else next_label + k - 1) for k, r in enumerate(roots)}
        next_label += len(roots) - 1
        root_of: dict[int, str] = {}
        indices = members
        d = pairs.within(where)
        local = {i: k for k, i in enumerate(indices)}
        for i in indices:
            if f.component[i] in new_label:
                root_of[i] = f.component[i]
        for i in sorted((i for i in indices if i not in root_of), key=lambda i: t[i]):
            c = f.component[i]
            if c not in topology:
                root_of[i] = roots[0]
                continue
            placed = [j for j, r in root_of.items() if r == c or topology.is_upstream(r, c)]
            # A cause is upstream; another metric of the same component only when none is.
            above = [j for j in placed if topology.is_upstream(f.component[j], c)] or [
                j for j in placed if f.component[j] == c
            ]
            if above:
                root_of[i] = root_of[min(above, key=lambda j: d[local[i], local[j]])]
                continue
            over = [r for r in roots if topology.is_upstream(r, c)] or roots
            started = [r for r in over if first[r] <= t[i] + lag_s] or over
            root_of[i] = max(started, key=lambda r: first[r])
        for i, r in root_of.items():
            out[i] = new_label[r]
    return out
