"""The web platform's API (seed 001): FastAPI + SQLAlchemy + Alembic."""
