"""Shopper Insights ETL: raw CSV exports → validated, cleaned DuckDB warehouse (+ models)."""
