"""onevm sample application: the booking bot API of seed 000 (FastAPI + PostgreSQL + Redis)."""
