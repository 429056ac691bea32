"""Exceptions raised by ferkit. Every message is one line a user can act on."""

from __future__ import annotations


class FerkitError(Exception):
    """Base class of all ferkit errors."""


class InputError(FerkitError):
    """A path, file or array that cannot be used as input (missing, corrupt, too large...)."""


class DatasetError(FerkitError):
    """A dataset that is missing or does not have the expected layout."""


class ModelError(FerkitError):
    """A model file or model card that cannot be loaded or used."""


class OutputError(FerkitError):
    """An output path that cannot be written."""


class ConfigError(FerkitError, ValueError):
    """A training configuration (file or keys) that cannot be used."""


class UnknownModelError(ModelError, KeyError):
    """A model name that is neither registered nor shipped (a ``KeyError`` too, for dictionary-style lookups)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
