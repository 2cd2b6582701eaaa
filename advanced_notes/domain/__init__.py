"""Pure domain code: no Flask, werkzeug, SQLAlchemy, boto3/botocore or PyJWT (checked by lint-imports)."""
