"""The {{ cookiecutter.project_name }} service."""
