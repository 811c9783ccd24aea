"""One Alembic revision per file, oldest first: ``NNNN_what.py`` with ``revision = "NNNN"``."""
