"""The alert distance and the clustering algorithms over it.

Two alerts are close when they happened close in time, on components that depend on one another
(the topology), with the same metric and anomaly type and the same labels. The distance, in
[0, 1], is a weighted sum of four parts:

* time: ``|t_i - t_j| / time_scale_s``, at most 1 (the scale is a sixth of the correlation
  window: ten minutes for the default hour);
* topology: 0 on one component, ``0.2 + 0.1 * (steps - 1)`` (at most 0.6) when one depends on the
  other, 1 when neither depends on the other (two branches that share a dependent fail for two
  reasons), 0.5 between different components when the topology does not know them;
* metric and anomaly type: half for each that differs;
* labels: the Jaccard distance of the label pairs.

With the default weights (0.3, 0.55, 0.1, 0.05), alerts on unrelated components are never
within the default ``eps`` of 0.5, and a dependent detected minutes after its dependency still is.

``dbscan`` (scikit-learn, precomputed distances; noise alerts within ``eps`` of each other are
joined, the rest stay alone), ``hierarchical`` (average linkage cut at ``eps``), ``kmeans`` (on a
classical-MDS embedding of the distances, k chosen by silhouette among the values around the
number of ``eps``-connected groups) and ``simple`` (the ``eps``-connected groups: single
linkage, no dependency). After any of them, a group whose alerts have more than one *topological
root* (a component no other component of the group is upstream of) is split by root: two
branches failing at once are two incidents even when they share dependents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allele.observability.ml_analytics.alert_intelligence.topology import Topology

WEIGHTS = {"time": 0.3, "topology": 0.55, "attributes": 0.1, "labels": 0.05}


@dataclass
class AlertFeatures:
    """The alerts of one batch as arrays (one row per alert)."""

    t: np.ndarray  # epoch seconds
    component: list[str]
    metric: np.ndarray  # integer codes
    anomaly_type: np.ndarray  # integer codes
    labels: list[frozenset[tuple[str, str]]]

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
) -> AlertFeatures:
    return AlertFeatures(
        t=np.asarray(t, dtype=np.float64),
        component=list(component),
        metric=_codes(metric),
        anomaly_type=_codes(anomaly_type),
        labels=labels if labels is not None else [frozenset()] * len(component),
    )


def component_distances(names: list[str], topology: Topology) -> np.ndarray:
    """The topology part of the distance between every two of ``names``."""
    k = len(names)
    out = np.full((k, k), 0.5)
    idx = np.array([topology.index.get(n, -1) for n in names])
    known = idx >= 0
    if known.any():
        sub = np.ix_(np.flatnonzero(known), np.flatnonzero(known))
        hops = topology.chain_hops[np.ix_(idx[known], idx[known])]
        out[sub] = np.where(hops < 0, 1.0, np.minimum(0.6, 0.2 + 0.1 * (hops - 1)))
    np.fill_diagonal(out, 0.0)
    return out


def distance_matrix(f: AlertFeatures, topology: Topology, time_scale_s: float) -> np.ndarray:
    """Pairwise alert distances in [0, 1] (see the module docstring)."""
    names, comp = np.unique(np.asarray(f.component, dtype=object), return_inverse=True)
    cd = component_distances([str(n) for n in names], topology)
    d = WEIGHTS["topology"] * cd[comp[:, None], comp[None, :]]
    d += WEIGHTS["time"] * np.minimum(1.0, np.abs(f.t[:, None] - f.t[None, :]) / time_scale_s)
    attr = 0.5 * (f.metric[:, None] != f.metric[None, :])
    attr += 0.5 * (f.anomaly_type[:, None] != f.anomaly_type[None, :])
    d += WEIGHTS["attributes"] * attr
    if any(f.labels):
        d += WEIGHTS["labels"] * _label_distances(f.labels)
    np.fill_diagonal(d, 0.0)
    return d


def _label_distances(labels: list[frozenset[tuple[str, str]]]) -> np.ndarray:
    # Few distinct label sets in practice: compute per distinct pair, then index.
    distinct = list(dict.fromkeys(labels))
    where = {s: i for i, s in enumerate(distinct)}
    m = np.zeros((len(distinct), len(distinct)))
    for i, a in enumerate(distinct):
        for j in range(i + 1, len(distinct)):
            b = distinct[j]
            union = len(a | b)
            m[i, j] = m[j, i] = 1.0 - len(a & b) / union if union else 0.0
    idx = np.array([where[s] for s in labels])
    return m[idx[:, None], idx[None, :]]


def _connected(adjacency: np.ndarray) -> np.ndarray:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(csr_matrix(adjacency), directed=False)
    return np.asarray(labels)


def cluster(d: np.ndarray, algorithm: str, eps: float, min_samples: int) -> np.ndarray:
    """Cluster labels (0..k-1) of the alerts whose distances are ``d``."""
    n = d.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    if algorithm == "simple":
        return _connected(d <= eps)
    if algorithm == "dbscan":
        return _dbscan(d, eps, min_samples)
    if algorithm == "hierarchical":
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(
            n_clusters=None, distance_threshold=eps, metric="precomputed", linkage="average"
        )
        return np.asarray(model.fit_predict(d))
    if algorithm == "kmeans":
        return _kmeans(d, eps)
    raise ValueError(f"unknown clustering algorithm {algorithm!r}")


def _dbscan(d: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    labels = np.asarray(
        DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit(d).labels_
    )
    noise = np.flatnonzero(labels < 0)
    if noise.size:
        # Incidents smaller than min_samples are still incidents: noise alerts within eps of
        # one another form their own small groups.
        sub = _connected(d[np.ix_(noise, noise)] <= eps)
        labels[noise] = labels.max(initial=-1) + 1 + sub
    return labels


def _kmeans(d: np.ndarray, eps: float) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = d.shape[0]
    # Classical MDS: coordinates whose Euclidean distances approximate d.
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d**2) @ j
    values, vectors = np.linalg.eigh(b)
    keep = np.argsort(values)[::-1][: min(8, n)]
    keep = keep[values[keep] > 1e-9]
    coords = vectors[:, keep] * np.sqrt(values[keep]) if keep.size else np.zeros((n, 1))
    groups = int(_connected(d <= eps).max()) + 1
    candidates = sorted({max(2, groups // 2), max(2, groups), max(2, min(n - 1, groups * 2))})
    candidates = [k for k in candidates if 2 <= k < n]
    if not candidates:
        return _connected(d <= eps)
    best, best_score = None, -2.0
    for k in candidates:
        labels = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(coords)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(silhouette_score(d, labels, metric="precomputed"))
        if score > best_score:
            best, best_score = labels, score
    return np.asarray(best) if best is not None else _connected(d <= eps)


def split_by_root(
    labels: np.ndarray, f: AlertFeatures, topology: Topology, lag_s: float
) -> np.ndarray:
    """Split every group with several topological roots into one group per root (alerts below
    more than one root go to the root seen last before them, allowing ``lag_s`` of detection
    lag; alerts below none stay with the earliest root)."""
    if not topology.known:
        return labels
    out = labels.copy()
    next_label = int(labels.max(initial=-1)) + 1
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        comps = {f.component[i] for i in members}
        known = [c for c in comps if c in topology]
        roots = [c for c in known if not any(topology.is_upstream(o, c) for o in known if o != c)]
        if len(roots) < 2:
            continue
        first = {r: min(f.t[i] for i in members if f.component[i] == r) for r in roots}
        roots.sort(key=lambda r: first[r])
        new_label = {r: (label if k == 0 else next_label + k - 1) for k, r in enumerate(roots)}
        next_label += len(roots) - 1
        for i in members:
            c = f.component[i]
            above = [r for r in roots if r == c or topology.is_upstream(r, c)]
            if not above:
                continue  # not in the topology: stays in the first group
            started = [r for r in above if first[r] <= f.t[i] + lag_s] or above
            out[i] = new_label[max(started, key=lambda r: first[r])]
    return out
