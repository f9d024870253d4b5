"""`python -m course_grading.worker`: one submission's worker process (see execute.main)."""

from .execute import main

if __name__ == "__main__":
    main()
