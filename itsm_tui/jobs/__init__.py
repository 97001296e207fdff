"""Scheduled jobs: each uses the services (never the reverse); they run in the console or headless."""
