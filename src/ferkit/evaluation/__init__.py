"""Metrics, tables and plots (numpy only; the plots need matplotlib)."""

from .metrics import classification_report, expected_calibration_error, fit_temperature, softmax

__all__ = ["classification_report", "evaluate_model", "expected_calibration_error", "fit_temperature",
           "markdown_table", "softmax"]


def __getattr__(name: str) -> object:
    if name in ("evaluate_model", "markdown_table"):  # (loads the dataset readers on first use)
        from . import evaluate

        return getattr(evaluate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
