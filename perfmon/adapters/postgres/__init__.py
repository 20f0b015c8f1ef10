"""The PostgreSQL storage: SQLAlchemy Core tables, repositories, engine and Alembic migrations."""
