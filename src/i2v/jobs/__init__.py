"""Durable jobs: the store (SQLAlchemy + Alembic), the Huey queue, and the worker that runs them. No web code here."""
