"""The {{ cookiecutter.project_name | docstring_text }} service."""

from {{ cookiecutter.project_slug }}.metrics_directory import use_run_directory

# Before anything imports prometheus-client, which reads it once (see metrics_directory.py).
use_run_directory()
