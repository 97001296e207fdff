"""Business rules of the service desk. Every service takes a SQLAlchemy session; none imports Textual, the
screens, the scheduled jobs or the command line, which all use the services (tests/test_import_graph.py)."""
