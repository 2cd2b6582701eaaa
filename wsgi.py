"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app`` or ``flask --app wsgi ...``.

A ``.env`` file in the working directory is loaded for development; variables already
set in the environment win. The app is built with its command-line commands
(``flask --app wsgi db upgrade``, ``token``, ``sweep``, ``storage``).
"""

from dotenv import load_dotenv

load_dotenv(override=False)

from advanced_notes.tools.cli import create_cli_app

app = create_cli_app()
