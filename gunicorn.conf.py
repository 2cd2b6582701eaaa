"""gunicorn settings for the service: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can be overridden with the environment variable named beside it. gunicorn
reads ``./gunicorn.conf.py`` by default, so a plain ``gunicorn wsgi:app`` run from the
project folder uses these settings too.

The hooks below run in the **master** process (``post_worker_init`` excepted: it runs in
each worker). Up to gunicorn 23, ``child_exit`` ran inside
its SIGCHLD handler, where a second worker exiting re-entered it: an import there saw a
half-initialised module, raised, and an exception in a hook ends the master's main loop
(the whole service). gunicorn >= 24 calls it from the main loop instead, but the rules
stay, because they cost nothing and a hook is the one place an error stops everything:
a hook imports nothing (everything it needs is imported here, when the config loads) and
never raises.
"""

import os
import shutil
import tempfile

# Prometheus counters summed over workers (see advanced_notes/api/metrics.py). The
# directory must be set before prometheus_client is imported: it picks its value class
# (per-process files or in-memory) at import time, and workers inherit the master's modules.
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="advanced-notes-metrics-")

# Bad settings stop the master here, with the message alone. Found in a worker instead,
# they arrive as the tail of a traceback, gunicorn reports only "Worker failed to boot",
# and with several workers the message repeats once per worker. The settings are read as
# wsgi.py will read them (.env under the real environment), without loading .env into
# this process: the GUNICORN_* values below still come from the real environment only.
from dotenv import dotenv_values  # noqa: E402
from prometheus_client.multiprocess import mark_process_dead  # noqa: E402

from advanced_notes.settings import ConfigError, gunicorn_workers, load_settings  # noqa: E402

try:
    load_settings({**{k: v for k, v in dotenv_values().items() if v is not None}, **os.environ})
except ConfigError as _exc:
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    raise SystemExit(f"advanced-notes: {_exc}") from None

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# The API waits on the database and the store, not the CPU: (2 x cores) + 1 workers,
# with a few threads each.
workers = gunicorn_workers(os.environ)
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = "gthread"
# Longer than the slowest bounded call: a hanging store gives up after about 17 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
# Recycle workers now and then so a slow leak cannot grow for ever; jitter avoids all at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 10000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 1000))
# The app logs one JSON line per request itself; gunicorn's access log is off unless
# asked for, and never includes the query string (%(U)s is the path alone).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
# gunicorn 27's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl):
# two servers on one machine (the API and the benchmark's ceiling, two tenants) would fight
# over it. Give each server its own path to turn it on.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Export the worker count gunicorn really runs (``-w`` included) as GUNICORN_WORKERS.

    The workers inherit it: the app warns at startup when its rate-limit counters are per
    process while several processes serve it (advanced_notes.settings.shared_rate_limit_problem).
    Runs in the master: no import, no raise (see the module docstring).
    """
    try:
        os.environ["GUNICORN_WORKERS"] = str(server.cfg.workers)
    except Exception as exc:  # a missing warning is a smaller harm than a master that stops
        server.log.warning("could not export the worker count: %s", exc)


def child_exit(server, worker):
    """Drop a dead worker's live gauges (``gauge_live*_<pid>.db``) from the metrics directory.

    Runs in the master: no import, no raise (see the module docstring).
    """
    try:
        mark_process_dead(worker.pid)
    except OSError as exc:  # a stale gauge is a wrong number; a dead master is an outage
        server.log.warning("could not drop metrics of worker %s: %s", worker.pid, exc)


def post_worker_init(worker):
    """Count this worker in ``advanced_notes_workers`` once its app is loaded.

    Runs in the **worker**, not the master, after the app was imported: the module is
    already loaded, so the import is a lookup. CLI commands sharing the metrics directory
    build the app too but never run this, so they leave no live gauge behind. Never raises:
    an exception here would stop the worker from booting.
    """
    try:
        from advanced_notes.api.metrics import mark_serving

        mark_serving()
    except Exception as exc:  # a missing gauge is a wrong number; a worker that cannot boot is an outage
        worker.log.warning("could not count worker %s in the metrics: %s", worker.pid, exc)


def on_exit(server):
    """Remove the metrics directory this config created (never one given by the operator)."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
