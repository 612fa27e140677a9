"""A Telegram reminder bot, as a worker that serves no HTTP."""
