"""A local Spark for the tests and benchmarks: the jars of the ``pyspark`` package on Debian's
OpenJDK, one SparkContext (one JVM) for the whole test session, with the settings a Spark
warehouse starts it with (:func:`etl.backends.spark_context.spark_conf`) and its temporary files in a
private folder; stopped when the block ends.

A backend that finds this context running uses it and never stops it (it did not start it),
so every Spark test of a session shares one JVM start (seconds) instead of paying one each.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localservers import find_binary

JAVA_PACKAGE = "openjdk-17-jre-headless"


def java() -> str:
    """The ``java`` binary; :class:`~localservers.ServerMissing` when no JRE is installed."""
    return find_binary("java", JAVA_PACKAGE)


@contextmanager
def local_spark(folder: Path) -> Iterator[tuple[object, float]]:
    """(the SparkSession, seconds its start took), stopped at the end of the block."""
    java()
    from pyspark.sql import SparkSession

    from etl.backends.spark_context import sharing, spark_conf

    started = time.perf_counter()
    builder = SparkSession.builder
    for key, value in spark_conf(folder).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    # one a backend started earlier in this process (and still uses) is the fixture's now
    sharing(session).started_here = False
    try:
        yield session, time.perf_counter() - started
    finally:
        session.stop()
