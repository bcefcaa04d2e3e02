# nbgrader's course settings: this repository is the course directory.
#
#   solutions/<assignment>/<assignment>.ipynb   instructor source (nbgrader's "source")
#   notebooks/<assignment>/<assignment>.ipynb   student release (`make release`)
#
# Every notebook is its own assignment, named after its folder.

from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearHiddenTests, GetGrades
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

from autograder.nbgrader_hooks import TagTestCells

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "torchnn-step-by-step"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
# The gradebook is the instructor's, never part of the repository (.gitignore).
c.CourseDirectory.db_url = "sqlite:///gradebook.db"

# The slowest graded cell trains a small CNN (09); a cell that runs longer than
# this is stopped, recorded as failed, and grading goes on with the next one.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True

# The checks capture warnings and stderr themselves, so a correct answer is
# never zeroed by a library's warning. This catches what they cannot see:
# warnings that native code prints straight to the process's stderr.
c.IgnorePattern.pattern = r"(?i)\bwarn(ing)?\b"
c.IgnorePattern.enabled = True

# A test cell the student deleted is put back and run, so the student's code is
# still checked (otherwise the cell would be left ungraded).
c.OverwriteCells.add_missing_cells = True

# Feedback shows what failed, never the hidden tests' code.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]

# In the release, test cells are tagged `raises-exception`, so that JupyterLab's
# Run All goes on past the tests of unfinished exercises (autograder/nbgrader_hooks.py).
c.GenerateAssignment.preprocessors = GenerateAssignment.class_traits()["preprocessors"].default() + [TagTestCells]

# Solution regions become this stub in the release; the checks recognise it.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
