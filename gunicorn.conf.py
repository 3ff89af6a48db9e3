"""gunicorn settings for the portal, read automatically from the working directory.

No access log: gunicorn's would record addresses and user agents (DESIGN §12).
"""

import multiprocessing
import os
from typing import Any

# The arbiter makes the workers' shared board as it loads this, before any fork.
from portal.server import balance

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("PORTAL_WORKERS", min(4, multiprocessing.cpu_count() * 2)))
# Threads, not sync workers: a reporter on a slow or stalled Tor link holds one
# thread while their upload trickles in, not a whole worker (slowloris).
# Each worker takes its share of the connections (portal/server/balance.py).
worker_class = "portal.server.balance.BalancedThreadWorker"
threads = int(os.environ.get("PORTAL_THREADS", "8"))
timeout = 120
accesslog = None
disable_redirect_access_to_syslog = True
errorlog = "-"
loglevel = "info"
control_socket_disable = True
forwarded_allow_ips = ""
limit_request_line = 4096
limit_request_fields = 50


def on_starting(_server: object) -> None:
    """Prepare the data dir (keys, demo desk, schema) once, in a child process,
    before any worker starts: a worker that migrated the schema would carry
    Alembic, Mako and Pygments (11 MiB) for its whole life; one that finds the
    schema current never loads them (portal/server/schema.py). If this fails,
    the workers run the same steps themselves and say why."""
    pid = os.fork()
    if pid == 0:  # the arbiter has no threads yet: a plain fork is safe
        code = 1
        try:
            from portal.server.config import load_config
            from portal.server.startup import prepare

            prepare(load_config())
            code = 0
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def pre_fork(server: Any, worker: object) -> None:
    balance.seat(worker, server.WORKERS.values())


def child_exit(_server: object, worker: object) -> None:
    balance.unseat(worker)


def post_fork(_server: object, _worker: object) -> None:
    """glibc gives threads malloc arenas of their own (up to 8 per core) and rarely
    returns their memory, so a worker's footprint grows with its threads under
    load. Two arenas serve eight threads well; set before the worker starts any.

    A thread that lets the GIL go (SQLite does, for every statement) waits up to
    the switch interval to have it back while another thread computes. The one
    writing for a batch holds SQLite's write lock meanwhile (portal/common/db.py),
    so a shorter interval (1 ms, not 5) shortens everyone's wait: at 32 clients,
    about 13% more browser reports a second and a lower p99 (bench/README.md)."""
    import contextlib
    import ctypes
    import sys

    sys.setswitchinterval(0.001)

    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to cap
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX


def post_worker_init(_worker: object) -> None:
    """Move what the worker holds once it is loaded (modules, the app, its
    templates and catalogs: about 100,000 objects) out of the collector's sight.
    Python's cyclic collector otherwise walks all of it in each full collection,
    with the GIL held: measured at 32 browser clients, 105-160 ms in which none
    of the worker's threads ran, every 20-30 s, and in both workers within a
    second of each other (they allocate alike); with it frozen, 5-7 ms. These
    objects live as long as the worker; one that dies sooner is still freed by
    its reference count (only a cycle among them would stay)."""
    import gc

    gc.collect()
    gc.freeze()


def _without_server_header() -> None:
    """gunicorn names itself in a Server header on every response; say nothing."""
    from gunicorn.http import wsgi

    default_headers = wsgi.Response.default_headers

    def default_headers_without_server(self: wsgi.Response) -> list[str]:
        return [h for h in default_headers(self) if not h.startswith("Server:")]

    wsgi.Response.default_headers = default_headers_without_server  # type: ignore[method-assign]


_without_server_header()
