"""The dashboard: a REST API under ``/api/v1``, a live event stream and a web page (FastAPI and
uvicorn, the ``dashboard`` extra), over a live engine or a store.

* ``serve_dashboard(engine=None, host=..., port=...)`` -- in a monitored program, in the
  background; ``allele dashboard`` -- on its own, over the store.
* ``create_app(source, token=...)`` -- the ASGI application, for a server of your own.
"""

from __future__ import annotations

from allele._lazy import lazy_namespace

_LAZY = {
    "create_app": "allele.observability.dashboard.app",
    "serve_dashboard": "allele.observability.dashboard.server",
    "DashboardServer": "allele.observability.dashboard.server",
    "StoreSource": "allele.observability.dashboard.source",
    "EngineSource": "allele.observability.dashboard.source",
}

__getattr__, __dir__, __all__ = lazy_namespace(__name__, globals(), _LAZY)
