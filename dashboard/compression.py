"""Compressed responses (brotli, zstd, gzip) for clients that accept them, with flask-compress.

A first visit to /carts is ~6 MB uncompressed, most of it the Plotly and Dash JavaScript
bundles; compressed it is a fraction of that (measured by ``benchmarks/first_load.py``).
Callback answers (JSON, tens of kB for a filter change) shrink about tenfold for the cost of
well under a millisecond of brotli at its default level 4.

Brotli comes first: it gives the smallest bundles, which is what a first visit over an
intranet link pays for; zstd and gzip serve clients without it. Answers under 500 bytes are
sent as they are (compressing them saves nothing). Static bundles get brotli's quality 11,
computed once per file in the background (:mod:`dashboard.static_compression`).
"""
from __future__ import annotations

from flask import Flask
from flask_compress import Compress

from dashboard import static_compression
from dashboard.config import DashboardConfig

ALGORITHMS = ["br", "zstd", "gzip", "deflate"]
MIMETYPES = ["text/html", "text/css", "text/plain", "application/json", "application/javascript",
             "text/javascript", "image/svg+xml"]


def install_compression(server: Flask, config: DashboardConfig) -> None:
    """Compress every response of these types in an ``after_request`` hook; register it before
    any hook that must see the uncompressed body (Flask runs those hooks last-registered first)."""
    server.config.setdefault("COMPRESS_ALGORITHM", ALGORITHMS)
    server.config.setdefault("COMPRESS_MIMETYPES", MIMETYPES)
    server.config.setdefault("COMPRESS_MIN_SIZE", 500)
    Compress(server)
    # after Compress: its hook then runs after this one and leaves the quality-11 body alone
    static_compression.install(server, config.url_prefix, config.cache_dir)
