"""Model registry in the style of timm: ``@register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from ferkit.errors import UnknownModelError

_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a model factory under its function name."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered architectures matching a shell-style pattern."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, **kwargs: Any) -> Any:
    """Build a registered architecture. Unknown names raise a ``KeyError`` naming the known ones."""
    return _factory(name)(**kwargs)


def _factory(name: str) -> Callable[..., Any]:
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; registered: {', '.join(list_models())}") from None


def model_arguments(name: str) -> set[str]:
    """The keyword arguments the architecture ``name`` takes (its factory's named parameters)."""
    import inspect

    params = inspect.signature(_factory(name)).parameters.values()
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
