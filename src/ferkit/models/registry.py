"""Model registry in the style of timm: ``@register_model``, ``create_model``, ``list_models``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from ferkit.errors import ConfigError, FerkitError, UnknownModelError

_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register a model factory under its function name."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered architectures matching a shell-style pattern (the shipped, trained models:
    ``ferkit.list_models()``)."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, **kwargs: Any) -> Any:
    """Build a registered architecture. Unknown names raise :class:`UnknownModelError` naming the known ones, and
    arguments the architecture does not take a :class:`~ferkit.errors.ConfigError` naming those it takes
    (``pretrained`` is accepted by every architecture; only those with ImageNet weights use it). Argument values the
    architecture cannot be built with (``width="abc"``, ``width=-1``) raise a ConfigError naming the arguments."""
    factory = _factory(name)
    check_model_arguments(name, kwargs)
    try:
        return factory(**kwargs)
    except FerkitError:
        raise  # (the factory's own clear error)
    except (TypeError, ValueError, RuntimeError) as exc:
        if not kwargs:
            raise  # (no argument to blame: a bug in the factory)
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
        raise ConfigError(f"{name} cannot be built with the arguments {given}: {exc}") from exc


def check_model_arguments(name: str, kwargs: dict[str, Any], hide: frozenset[str] = frozenset()) -> None:
    """Refuse arguments the architecture does not take (its factory would ignore them: a typo would build the
    default model), naming those it takes except ``hide``."""
    unknown = set(kwargs) - model_arguments(name) - {"pretrained"}
    if unknown:
        raise ConfigError(f"{name} takes no argument {', '.join(sorted(unknown))}; it takes "
                          f"{', '.join(sorted(model_arguments(name) - hide))}")


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
