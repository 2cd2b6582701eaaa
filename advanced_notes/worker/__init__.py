"""The processing worker: Celery tasks that run the media engine on ready clips (docs/processing.md).

The top layer beside ``tools``: with ``adapters.taskqueue`` the only code that imports
Celery, and with ``tools`` the only code that imports the media engine. Start it with
``celery -A advanced_notes.worker.celery_app worker`` (see docs/processing.md).
"""
