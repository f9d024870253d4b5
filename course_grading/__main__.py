"""`python -m course_grading`: the command line (see course_grading.cli)."""

import sys

from .cli import main

sys.exit(main())
