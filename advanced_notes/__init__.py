"""Advanced Notes audio clips: direct-to-bucket uploads with presigned S3 URLs.

Importing the package loads nothing else: the server is built by
:func:`advanced_notes.app.create_app`, and the client SDK (:mod:`advanced_notes.client`)
needs only ``requests``.
"""

__version__ = "0.1.0"
