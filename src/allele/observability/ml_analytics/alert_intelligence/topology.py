"""The dependency topology: which component depends on which, as matrices over components.

``topology`` maps a component id to the ids it depends on (``{"agent": ["llm", "db"]}``): a
failure spreads from a dependency to its dependents, so a dependency is *upstream*. From it we
keep, for the components it names, ``upstream[a, b]`` (``b`` depends on ``a``, directly or
through others), the hops between them along dependencies, and the undirected hops.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np

from allele.errors import ValidationError


class Topology:
    """Component dependencies (see the module docstring); ``None`` topology = ``Topology({})``."""

    def __init__(self, depends_on: Mapping[str, Iterable[str]] | None = None) -> None:
        if depends_on is not None and not isinstance(depends_on, Mapping):
            raise ValidationError(
                f"topology must map a component id to the ids it depends on, got {depends_on!r}"
            )
        deps: dict[str, list[str]] = {}
        for component, upstream in (depends_on or {}).items():
            if isinstance(upstream, str) or not all(isinstance(u, str) for u in upstream):
                raise ValidationError(
                    f"topology[{component!r}] must be a list of component ids, got {upstream!r}"
                )
            deps[str(component)] = list(upstream)
        names = sorted(set(deps) | {u for ups in deps.values() for u in ups})
        self.known = bool(names)
        #: component -> the components it depends on directly
        self.depends_on = {name: frozenset(deps.get(name, ())) for name in names}
        self.index = {name: i for i, name in enumerate(names)}
        self.names = names
        n = len(names)
        # down[a] = the components that depend on a directly
        down: list[list[int]] = [[] for _ in range(n)]
        for component, upstream in deps.items():
            for u in upstream:
                down[self.index[u]].append(self.index[component])
        # hops[a, b] = dependency steps from a down to b (-1: b does not depend on a)
        self.hops = np.full((n, n), -1, dtype=np.int32)
        for a in range(n):
            self.hops[a, a] = 0
            queue = deque([a])
            while queue:
                x = queue.popleft()
                for y in down[x]:
                    if self.hops[a, y] < 0:
                        self.hops[a, y] = self.hops[a, x] + 1
                        queue.append(y)
        self.upstream = self.hops > 0  # upstream[a, b]: b depends on a (transitively)
        self.upstream_rows: list[list[bool]] = self.upstream.tolist()  # for per-pair lookups
        # related[a, b]: one depends on the other; their distance in dependency steps
        down_or_up = np.where(self.hops >= 0, self.hops, self.hops.T)
        self.chain_hops = np.where((self.hops >= 0) | (self.hops.T >= 0), down_or_up, -1)

    def __contains__(self, component: object) -> bool:
        return component in self.index

    def is_upstream(self, a: str, b: str) -> bool:
        """Whether ``b`` depends on ``a`` (directly or through others)."""
        ia, ib = self.index.get(a), self.index.get(b)
        return ia is not None and ib is not None and self.upstream_rows[ia][ib]
