# The instructor's nbgrader configuration for the course's exercises (nbgrader 0.9).
#
# `./course release` and `./course grade DIR` read this file: they work from a clean checkout
# without editing it (they use a temporary gradebook and working folders, never this folder).
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

# Autograding. Per-cell time limit in seconds: loading a model takes 1-3 s offline but much longer
# with the real checkpoints on a slow CPU, so be generous. A cell over the limit is interrupted
# and scores zero; the rest of the notebook still runs.
c.Execute.timeout = 120
c.Execute.startup_timeout = 120  # kernel start (imports torch on a busy machine)
c.Execute.interrupt_on_timeout = True
# After an interrupt, how long to wait for the kernel to go idle. A kernel that ignores the
# interrupt (signal.SIG_IGN) fails the notebook here; course_utils.grading then skips that cell
# and grades the rest.
c.Execute.iopub_timeout = 15
c.Execute.raise_on_iopub_timeout = True
c.Execute.shutdown_kernel = "immediate"  # kill the kernel at the end: a hung one never answers
# Deleted test cells: nbgrader 0.9.6 can re-add them (add_missing_cells), but raises KeyError when
# the cell before a test is a locked, ungraded cell (our self-checks). course_utils.grading puts
# deleted locked cells back itself before nbgrader runs; plain nbgrader scores a deleted test 0.
c.OverwriteCells.add_missing_cells = False
# Test cells: course_utils.grading does not count text on stderr (a library warning) as a failed
# test; nbgrader 0.9 alone gives such a cell zero points.
# Keep autograded notebooks and feedback small.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60

# Settings of course_utils.grading (not nbgrader's): the wall-clock limit of one whole submission
# (enforced outside nbgrader: the student's grading process group is killed), how many
# submissions run in parallel, how many times a submission is re-run after a cell killed or hung
# its kernel (that cell then scores zero), and the largest output kept per cell (characters).
c.CourseGrading.submission_timeout = 900
c.CourseGrading.jobs = 2
c.CourseGrading.max_retries = 3
c.CourseGrading.max_output_chars = 20000
