"""Alembic's entry point: runs the history on the connection the store hands over (see __init__.py)."""

from alembic import context

from enricher.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run the migrations through enricher.store.migrations.upgrade(connection)")
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
