"""Client addresses behind reverse proxies (werkzeug's ProxyFix), for ``TRUSTED_PROXIES``.

Anonymous requests are rate-limited by ``request.remote_addr``. Behind a load balancer
that address is the balancer's, and every client would share one budget.
With ``TRUSTED_PROXIES=N`` the app trusts the last N entries of ``X-Forwarded-For`` and
``X-Forwarded-Proto`` (each proxy appends one): set it to the number of proxies *you run*
in front of the app, never more, or a client can spoof its address with its own header.
gunicorn's ``forwarded_allow_ips`` is not needed for this: ProxyFix does the work.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from advanced_notes.settings import Settings


def init_proxy_fix(app: Flask, settings: Settings) -> None:
    """Wrap ``app.wsgi_app`` in ProxyFix when ``settings.trusted_proxies`` > 0 (0: do nothing)."""
    if settings.trusted_proxies > 0:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
