#!/usr/bin/env bash
# Bake the default project into .demo/ (replacing an earlier demo), install it and serve it.
set -euo pipefail
cd "$(dirname "$0")/.."

UV=${UV:-uv}
demo_dir=.demo
rm -rf "$demo_dir"
"$UV" run --locked cookiecutter --no-input --output-dir "$demo_dir" .
project=$(find "$demo_dir" -mindepth 1 -maxdepth 1 -type d | head -n 1)
python_version=$(cat "$project/.python-version")
# The interpreter the baked project asks for, found the way the template's tests find it.
UV_PYTHON=$("$UV" run --locked python -c "from tests.baking import find_python; print(find_python('$python_version'))")
export UV_PYTHON
echo "demo: baked $project; serving on http://127.0.0.1:${PORT:-8000} (Ctrl-C stops it)"
echo "demo: try  curl -s http://127.0.0.1:${PORT:-8000}/health/ready"
exec make -C "$project" run UV="$(command -v "$UV")"
