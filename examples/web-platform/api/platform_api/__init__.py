"""The web platform's API: FastAPI + SQLAlchemy + Alembic."""
