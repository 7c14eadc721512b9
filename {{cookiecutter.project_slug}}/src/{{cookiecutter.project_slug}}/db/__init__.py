"""Database engine and session lifecycle."""
