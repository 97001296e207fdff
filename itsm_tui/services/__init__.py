"""Business rules of the service desk. Every service takes a SQLAlchemy session; none imports Textual."""
