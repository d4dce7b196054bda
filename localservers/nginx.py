"""A throw-away nginx (Debian's ``nginx-light``) as a round-robin load balancer on 127.0.0.1.

    with Nginx([port_a, port_b]) as lb:     # lb.url == "http://127.0.0.1:<port>"
        ...
        lb.served()                         # the access log: which upstream answered what

Everything nginx writes (pid, error and access logs, the temp folders for request and response
bodies) lives in a private folder, removed at the end; the config file is written there too.
What the config decides, and why:

* Round robin over the upstreams (nginx's default). ``max_fails=1 fail_timeout=5s``: an
  instance that refused a connection is left out for 5 s, then tried again, so a restarted
  host rejoins by itself.
* ``proxy_next_upstream error timeout http_502 http_503``: a request an instance cannot take
  (connection refused, no answer within ``proxy_connect_timeout``, or a 502/503 from it) goes
  to the next instance, so a killed host costs only the requests it had already received.
  ``non_idempotent`` is NOT enabled: Dash callbacks are POSTs, and most are pure reads, but
  the same endpoint carries the admin actions ("refresh data now", add or remove a user,
  "build a report now") and ``/login`` counts failed sign-ins. nginx cannot tell them apart
  from the body, and a POST that was sent to an instance which then died may have acted
  already: re-sending it elsewhere could start a second refresh or report, or count a failed
  sign-in twice. A browser retries a failed callback on the next interaction anyway; the cost
  is the requests in flight on the dead instance (one per sync worker at most).
* No ``keepalive`` to the upstreams: gunicorn's sync workers close every connection after one
  response, so pooled connections would save nothing, and a pooled connection to an instance
  that just died would turn a POST into a 502 where a fresh connection is refused and retried.
* Headers: ``Host`` is the client's (with its port: the app builds absolute redirects from
  it, and ``AUTH=none`` answers only loopback host names), ``X-Forwarded-For`` /
  ``-Proto`` / ``-Host`` / ``-Port`` describe the client's request (gunicorn believes
  ``X-Forwarded-Proto`` only from ``FORWARDED_ALLOW_IPS``, 127.0.0.1 by default, for the
  ``Secure`` cookie flag), and ``X-Request-ID`` is the client's sane one or nginx's own, so
  the access log here and the app's log lines share the id. ``X-Forwarded-User`` and
  ``-Groups`` are removed: this balancer authenticates nobody, and under ``AUTH=proxy`` a
  peer listed in ``AUTH_PROXY_ADDRESSES`` that passed a client's own header on would let
  anyone name themselves.
* Compression stays the app's (``gzip off`` here): it answers br/zstd/gzip by the client's
  ``Accept-Encoding``, which nginx passes through with the ``Content-Encoding`` and ``Vary``
  it gets back. Responses are buffered (nginx's default, what gunicorn's sync workers want, so a
  slow client never holds a worker); a response that must stream says
  ``X-Accel-Buffering: no`` and nginx passes it on as it comes.
* ``client_max_body_size 5m``: above the app's own 4 MiB limit, so the app refuses an
  oversized request with its message (413) rather than nginx's page.
"""
from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from localservers import LocalServer, find_binary

LOG_FIELDS = ("msec", "status", "method", "uri", "upstream_addr", "upstream_status", "request_time", "request_id",
              "body_bytes_sent", "sent_http_content_length")


@dataclass(frozen=True)
class Served:
    """One line of the access log: a request and the upstream(s) that were tried for it."""

    at: float                  # epoch seconds when the response was sent
    status: int
    method: str
    uri: str
    upstreams: tuple[str, ...]  # "127.0.0.1:port" of each instance tried, in order
    upstream_statuses: tuple[str, ...]
    seconds: float
    request_id: str
    bytes_sent: int                # of the body
    content_length: int | None     # as announced to the client

    @property
    def upstream(self) -> str:
        """The instance that gave the answer (the last one tried)."""
        return self.upstreams[-1] if self.upstreams else "-"

    @property
    def failed(self) -> bool:
        """An error status, or an answer cut short (its upstream died while nginx relayed it)."""
        return self.status >= 500 or (self.content_length is not None and self.bytes_sent < self.content_length)


def config_text(folder: Path, port: int, upstreams: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in upstreams)
    # as root the workers would switch to "nobody", which cannot write into this private folder
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {folder / 'nginx.pid'};
error_log {folder / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    log_format balancer '$msec\\t$status\\t$request_method\\t$uri\\t$upstream_addr\\t$upstream_status\\t$request_time\\t$rid'
                        '\\t$body_bytes_sent\\t$sent_http_content_length';
    access_log {folder / 'access.log'} balancer;
{temp}
    server_tokens off;
    gzip off;
    client_max_body_size 5m;
    map $http_x_request_id $rid {{ "" $request_id; default $http_x_request_id; }}
    upstream dashboard {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://dashboard;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Request-ID $rid;
            proxy_set_header X-Forwarded-User "";
            proxy_set_header X-Forwarded-Groups "";
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
            # gunicorn kills a request after its own timeout (60 s): the app decides, not nginx
            proxy_read_timeout 65s;
            proxy_send_timeout 65s;
            proxy_buffer_size 16k;
            proxy_buffers 64 16k;
        }}
    }}
}}
"""


class Nginx(LocalServer):
    def __init__(self, upstreams: list[int], folder: Path | None = None, port: int | None = None) -> None:
        binary = find_binary("nginx", "nginx-light", "/usr/sbin")
        super().__init__("nginx-", folder, port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.upstreams = list(upstreams)
        self.config = self.folder / "nginx.conf"
        self.config.write_text(config_text(self.folder, self.port, self.upstreams))
        self.access_log = self.folder / "access.log"
        self.error_log = self.log = self.folder / "error.log"
        for stale in (self.access_log, self.error_log):   # of an earlier balancer in the same folder
            stale.unlink(missing_ok=True)
        # -e: the error log before the config is read (Debian's default is /var/log/nginx)
        self.argv = [binary, "-p", str(self.folder), "-c", str(self.config), "-e", str(self.error_log)]

    def check(self) -> None:
        found = subprocess.run([*self.argv, "-t", "-q"], capture_output=True, text=True)
        if found.returncode != 0:
            raise RuntimeError(f"nginx refused its config {self.config}: {found.stderr.strip()}")

    def served(self) -> list[Served]:
        """Every request logged so far (nginx writes a line when the response is sent)."""
        out = []
        if not self.access_log.exists():
            return out
        for line in self.access_log.read_text(errors="replace").splitlines():
            cells = line.split("\t")
            if len(cells) != len(LOG_FIELDS):
                continue
            msec, status, method, uri, addrs, statuses, seconds, rid, sent, length = cells
            out.append(Served(float(msec), int(status), method, uri, _split(addrs), _split(statuses),
                              float(seconds), rid, int(sent), int(length) if length.isdigit() else None))
        return out

    def served_all(self, request_ids, timeout: float = 10.0) -> list[Served]:
        """:meth:`served` once every one of ``request_ids`` is in the log (nginx writes a line
        after the response is sent, so right after the last answer it may not be there yet),
        or at the deadline."""
        wanted, deadline = set(request_ids), time.monotonic() + timeout
        while True:
            found = self.served()
            if wanted <= {s.request_id for s in found} or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def summary(served: list[Served], label=str, dead: str | None = None) -> dict:
    """Requests per upstream (named by ``label``), those passed on to another upstream, and
    those lost in flight on the upstream ``dead`` (received, then its connection was reset)."""
    return {"requests": len(served),
            "answered_by_host": dict(Counter(label(s.upstream) for s in served if not s.failed)),
            "passed_to_another_host": sum(len(s.upstreams) > 1 and not s.failed for s in served),
            "lost_in_flight_on_killed_host": sum(s.failed and dead in s.upstreams for s in served),
            "failed_at_balancer": sum(s.failed for s in served)}


def _split(value: str) -> tuple[str, ...]:
    """``$upstream_addr`` lists every instance tried: ``a, b`` (and ``a : b`` across upstream groups)."""
    if value in ("", "-"):
        return ()
    return tuple(part.strip() for part in value.replace(" : ", ", ").split(",") if part.strip())
