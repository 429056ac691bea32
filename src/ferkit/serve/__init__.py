"""``ferkit serve``: the HTTP service and web page (needs the ``[serve]`` extra: FastAPI, uvicorn,
python-multipart). :func:`create_app` builds the FastAPI app; :class:`ServeSettings` holds its limits."""

from __future__ import annotations

from typing import Any

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ferkit.serve import app

        return getattr(app, name)
    raise AttributeError(name)
