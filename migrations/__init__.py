"""Schema migrations, applied by Alembic (``balsong db upgrade``). Plain SQL, numbered."""
