"""Second line of defence: validate the answers again before any file is rendered.

Rendering the answers already ran these rules (see answer_validation.py); this hook covers paths
that skip that step, such as `cookiecutter --replay` with an edited replay file.
"""

import json
import sys

sys.path.insert(0, r"{{ template_root }}")

from answer_validation import find_problems, format_problems

ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")


def main() -> int:
    problems = find_problems(ANSWERS)
    if problems:
        print(format_problems(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
