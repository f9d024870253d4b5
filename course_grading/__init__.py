"""Release and batch-grade the course's nbgrader exercises, each submission in its own sandbox.

The instructor's package (installed with the `instructor` extra; learners never need it):
`python -m course_grading grade SUBMISSIONS` and `python -m course_grading release`.
One module per concept: settings (config), the parent/worker messages (protocol), submissions
and notebook repair, release, what a batch prepares and reuses (prepared), the bubblewrap
sandbox, the kernel's start-up (kernel_start), the per-submission grading
(execute.grade_submission: a plain function, job in, result out), the batch, feedback pages and
the command line.
"""

import sys

# jsonschema (imported by nbformat) builds about 35 Earley parsers for rfc3987_syntax's "iri"
# format checker at import: 1.5 s of CPU in every grading process, for a format no notebook
# schema uses (python-jsonschema/jsonschema#1428). Without the module jsonschema skips that
# checker; nbformat's validation is unchanged.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
