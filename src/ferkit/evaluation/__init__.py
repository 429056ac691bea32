"""Metrics, tables and plots (numpy only; the plots need matplotlib)."""

from .metrics import classification_report, expected_calibration_error, fit_temperature, softmax

__all__ = ["classification_report", "expected_calibration_error", "fit_temperature", "softmax"]
