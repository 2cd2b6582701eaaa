"""The token library (PyJWT), loaded with cryptography only where asymmetric keys are configured.

PyJWT imports cryptography when it is installed, whatever algorithm a caller uses, to offer
RS/ES/PS/EdDSA (``jwt/algorithms.py`` decides ``has_crypto`` at import); that costs a web
worker 8-10 MiB. A deployment that verifies only HS256 tokens needs none of it: PyJWT's HMAC
algorithms use :mod:`hmac` and :mod:`hashlib`, and PyJWT without cryptography is one of its
supported installs (``pip install pyjwt``). So when the first import of PyJWT in a process
comes from an HS256-only configuration, cryptography is hidden from it: ``None`` in
:data:`sys.modules` makes ``import cryptography`` raise ModuleNotFoundError (the import
system's documented behaviour), which PyJWT catches to leave its asymmetric algorithms out.
The validation itself is PyJWT's, unchanged.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

_CRYPTOGRAPHY = "cryptography"


@contextmanager
def _hidden(name: str) -> Iterator[None]:
    """Make ``import name`` fail inside the block, unless ``name`` is already imported."""
    if name in sys.modules:
        yield
        return
    sys.modules[name] = None  # type: ignore[assignment]  # None: the import system's "not importable"
    try:
        yield
    finally:
        if sys.modules.get(name, ...) is None:
            del sys.modules[name]


def pyjwt(*, asymmetric: bool) -> ModuleType:
    """The ``jwt`` module, imported on first use.

    Args:
        asymmetric: True when the configuration verifies RS256/ES256 tokens (a JWKS URL):
            PyJWT must then have cryptography.
    Returns:
        PyJWT's ``jwt`` module. The first call of a process decides whether it has its
        asymmetric algorithms: with ``asymmetric=False`` (and cryptography not already
        imported by something else) it has only HMAC ones.
    Raises:
        RuntimeError: ``asymmetric`` is True but this process already imported PyJWT
            without cryptography (an HS256-only app was built first): build apps that
            verify JWKS tokens in a process of their own, or import ``jwt`` before the first
            app (as the tests do).
    """
    module = sys.modules.get("jwt")
    if module is None:
        if asymmetric:
            module = importlib.import_module("jwt")
        else:
            with _hidden(_CRYPTOGRAPHY):
                module = importlib.import_module("jwt")
    if asymmetric and not module.algorithms.has_crypto:
        raise RuntimeError(
            "PyJWT was loaded without cryptography for an HS256-only app in this process; "
            "an app verifying RS256/ES256 tokens (AUTH_JWKS_URL) needs a process of its own"
        )
    return module
