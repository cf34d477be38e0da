"""Relational storage: SQLAlchemy models, engine set-up, Alembic migrations and the ledger."""
