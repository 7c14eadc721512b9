"""Database failures told in one message: the cause and what to do about it, no traceback."""


class ExplainedDatabaseError(Exception):
    """A database failure whose message is written for the person running the command."""
