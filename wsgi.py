"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi ...``.

A ``.env`` file in the working directory is loaded for development; variables already
set in the environment win.
"""

from dotenv import load_dotenv

load_dotenv(override=False)

from advanced_notes import create_app  # noqa: E402

app = create_app()
