"""This process's one SparkContext (one JVM), shared by every Spark warehouse object of it.

Holds the settings a warehouse starts a context with (:func:`spark_conf`: local mode bound to
127.0.0.1, web UI off, UTC, temporary files and logs in the warehouse's scratch folder), and
the bookkeeping of who uses the context (:func:`sharing`: backends not closed yet and open
connections), so that :func:`leave` stops a context a backend started when its last user
goes, and never one started elsewhere (a test fixture, a notebook), which others may still use.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"
DEFAULT_DRIVER_MEMORY = "1g"
# Spark's own chatter on stderr: warnings and errors, without the start-up notes that mean
# nothing here (no native Hadoop library; a host name on loopback, where the driver binds anyway)
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = spark %p %c{1}: %m%n%ex
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
logger.host.name = org.apache.spark.util.Utils
logger.host.level = error
"""


def spark_conf(scratch: Path) -> dict[str, str]:
    """The settings of a SparkContext started for a warehouse, temporary files in ``scratch``
    (where its log configuration is written); py4j's Python logger is quieted on the way."""
    scratch.mkdir(parents=True, exist_ok=True)
    log_config = scratch / "log4j2.properties"
    log_config.write_text(LOG4J2, encoding="utf-8")
    logging.getLogger("py4j").setLevel(logging.WARNING)    # an INFO line per closed socket
    master = os.environ.get("SPARK_MASTER") or DEFAULT_MASTER
    conf = {
        "spark.master": master,
        "spark.app.name": "shopper-insights",
        "spark.driver.memory": os.environ.get("SPARK_DRIVER_MEMORY") or DEFAULT_DRIVER_MEMORY,
        # java.io.tmpdir is also Spark's local dir (shuffle and pyspark's own temporary files)
        "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={scratch} "
                                         f"-Dlog4j2.configurationFile=file:{log_config}",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # no Hive metastore (no metastore_db/ or derby.log in the working directory)
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(scratch / "spark-warehouse"),
        # the tables are small to medium: 200 shuffle partitions would be 200 tiny tasks a query
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.inferTimestampNTZ.enabled": "true",   # DuckDB TIMESTAMP stays naive
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",  # not INT96, which has no zone
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # pyspark's Python workers (Ibis UDFs) run in this interpreter, not whatever python3 is
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON") or sys.executable,
    }
    if master.startswith("local"):
        conf["spark.driver.host"] = conf["spark.driver.bindAddress"] = "127.0.0.1"
    return conf


class _Sharing:
    """Who uses this process's SparkContext (one JVM, whichever object started it): backends
    not closed yet and open connections. Kept on the context itself. When the last one leaves,
    a context a backend started is stopped; one started elsewhere (a test fixture, a notebook)
    never is."""

    def __init__(self, started_here: bool) -> None:
        self.started_here = started_here
        self.lock = threading.Lock()
        self.users: set[int] = set()

    def join(self, user: object) -> None:
        with self.lock:
            self.users.add(id(user))

    def leave(self, user: object) -> bool:
        """Whether the context should stop now."""
        with self.lock:
            was_in = id(user) in self.users
            self.users.discard(id(user))
            return was_in and self.started_here and not self.users


def sharing(session: SparkSession) -> _Sharing:
    """Who uses ``session``'s context (a context started elsewhere: never stopped here)."""
    context = session.sparkContext
    found = getattr(context, "_shopper_sharing", None)
    if found is None:
        found = context._shopper_sharing = _Sharing(started_here=False)
    return found


def is_active(session: SparkSession) -> bool:
    """Whether ``session`` is on the context running now (not one stopped meanwhile)."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is session.sparkContext


def join(scratch: Path, user: object) -> SparkSession:
    """This process's SparkSession, ``user`` counted among its context's users; a context is
    started (with :func:`spark_conf`, temporary files in ``scratch``) when none runs."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    with SparkContext._lock:        # the lock pyspark takes to create the one context
        if SparkContext._active_spark_context is not None:
            session = SparkSession.builder.getOrCreate()
        else:
            builder = SparkSession.builder
            for key, value in spark_conf(scratch).items():
                builder = builder.config(key, value)
            session = builder.getOrCreate()
            session.sparkContext._shopper_sharing = _Sharing(started_here=True)
            log.info("started Spark (%s)", session.sparkContext.master)
    sharing(session).join(user)
    return session


def leave(session: SparkSession, user: object) -> None:
    """``user`` no longer uses ``session``'s context: stopped if it was the last user of a
    context a warehouse started."""
    # a context stopped and replaced meanwhile is not stopped again: stop() would forget
    # the new one's default session
    if sharing(session).leave(user) and is_active(session):
        log.info("stopping Spark: the last warehouse connection of this process closed")
        session.stop()
