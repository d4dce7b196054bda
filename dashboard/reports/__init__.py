"""Periodic reports (issue 11): build, archive, schedule and deliver.

* :mod:`.archive` — one folder per report with its manifest and delivery records.
"""
