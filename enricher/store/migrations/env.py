"""Alembic's entry point: runs the history on the connection the store hands over (see __init__.py).
Imported outside Alembic (a walk of the package) it does nothing."""

from alembic import context

from enricher.store.tables import metadata

config = getattr(context, "config", None)  # set only while Alembic runs this script
if config is not None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise SystemExit("run the migrations through enricher.store.migrations.upgrade(connection)")
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
