"""HTTP layer: the flask-smorest API, its blueprints and the request hooks around them.

:func:`advanced_notes.api.registry.init_api` builds an app's API. This package module
imports nothing, so importing one module of the layer (``api.auth`` to mint a token,
``api.context`` from a command) loads that module alone, not every blueprint and service.
"""
