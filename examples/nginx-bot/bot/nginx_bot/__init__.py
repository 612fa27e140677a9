"""The bot: a polling loop (PostgreSQL rows, Redis counters) with an HTTP status
endpoint, behind nginx."""
