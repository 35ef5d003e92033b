"""Notifications (apprise) and the Telegram bot."""
