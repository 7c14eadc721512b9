"""The {{ cookiecutter.project_name | docstring_text }} service."""
