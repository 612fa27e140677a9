"""Seed 004's Telegram reminder bot, as a worker that serves no HTTP."""
