"""Adapters to the outside world: the database (SQLAlchemy), the object store (boto3), migrations (Alembic)."""
