"""The metadata store: SQLAlchemy models, Alembic migrations and the queries services share."""
