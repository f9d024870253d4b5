# The instructor's nbgrader configuration for the course's exercises (nbgrader 0.9).
#
# `./course release` and `./course grade DIR` (the course_grading package) read this file: they
# work from a clean checkout without editing it (temporary working folders, never this folder).
# It is also a valid config for running nbgrader's own commands from exercises/, e.g.
# `cd exercises && nbgrader generate_assignment lesson01` (that run creates exercises/gradebook.db,
# which .gitignore keeps out of the repository).
import os

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

# Course directory = this folder: source/lessonNN/NN_topic_exercises.ipynb holds the versions with
# solutions and hidden tests; release/ the committed student versions; submitted/, autograded/
# and feedback/ follow nbgrader's usual layout.
c.CourseDirectory.course_id = "transformers-from-the-inside"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# Student versions: the solution region becomes this stub; hidden tests disappear.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Plain nbgrader's autograding (`nbgrader autograde` run from exercises/). ./course grade does not
# use these: its own settings are below.
c.Execute.timeout = 120
c.Execute.startup_timeout = 120
c.Execute.interrupt_on_timeout = True
c.Execute.iopub_timeout = 15
c.Execute.raise_on_iopub_timeout = True
c.Execute.shutdown_kernel = "immediate"  # kill the kernel at the end: a hung one never answers
# Deleted test cells: nbgrader 0.9.6 can re-add them (add_missing_cells), but raises KeyError when
# the cell before a test is a locked, ungraded cell (our self-checks).
c.OverwriteCells.add_missing_cells = False
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60

# Settings of ./course grade (course_grading.config.CourseGrading): each has one default there,
# with its help text; `./course grade --help` lists them all, and any of them can be set here,
# for example:
#   c.CourseGrading.cell_timeout = 120        # seconds per cell
#   c.CourseGrading.submission_timeout = 900  # wall-clock seconds per submission
#   c.CourseGrading.jobs = 2                  # submissions in parallel
#   c.CourseGrading.memory_limit_mb = 4096    # address space of a submission's kernel
