"""Batch jobs: analyse large photo / video archives into a resumable job folder of Parquet parts.

>>> from ferkit.batch import run_batch, read_archive          # doctest: +SKIP
>>> summary = run_batch(["photos/"], "results/", workers=2)   # doctest: +SKIP
>>> df = read_archive("results/")                             # doctest: +SKIP
"""

from ferkit.batch.archive import STATUS_COLUMNS, Archive, StatusRecord, iter_archive_rows, read_archive
from ferkit.batch.run import BatchSummary, run_batch

__all__ = ["STATUS_COLUMNS", "Archive", "BatchSummary", "StatusRecord", "iter_archive_rows", "read_archive",
           "run_batch"]
