"""Scheduled jobs: each uses the services (never the reverse) and runs in the console or ``itsm scheduler``."""
