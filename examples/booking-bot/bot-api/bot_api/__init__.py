"""onevm sample application: the booking bot API (FastAPI + PostgreSQL + Redis)."""
