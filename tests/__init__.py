"""The template's own tests: bake, lint and run every combination."""
