"""Alembic migrations; `python -m {{ cookiecutter.project_slug }} migrate` applies them."""
