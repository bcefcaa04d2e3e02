"""A class on JupyterHub, through nbgrader's exchange, in a real browser.

``make hub`` starts the classroom (conftest.py): an instructor and two students, each a system
account. The instructor releases the first notebook; in Chromium both students log in, fetch it
from the *Assignments* tab, fill in an answer and submit (the first student twice, the second
after the due date). The instructor collects, grades with ``autograder grade`` straight from the
collected ``submitted/`` and releases the feedback, which each student fetches in the same tab and
reads; formgrader shows the grades. Then a student's own kernel looks for what it must not see:
``solutions/``, the instructor's checks, the other student's work, the instructor's course folder
and formgrader. Screenshots land in build/hub-artifacts/.
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from urllib.parse import quote
from datetime import datetime, timezone

import nbformat
import pytest

from autograder import registry
from support import ROOT, nbgrader_meta, release_path, solution_path

pytestmark = [pytest.mark.slow, pytest.mark.browser]

A = registry.notebooks()[0]
ARTIFACTS = ROOT / "build" / "hub-artifacts"
# A common laptop screen
VIEWPORT = {"width": 1280, "height": 800}
SPAWN_MS = 180_000
LIST_MS = 60_000
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden)"


# --- what a person does in the browser ------------------------------------------------------------


class Person:
    """One browser context, logged in to the hub as ``user``."""

    def __init__(self, browser, classroom, user: str):
        self.classroom, self.user = classroom, user
        self.role = user.removeprefix(classroom.prefix)  # instructor, student1, ...: names for screenshots
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def log_in(self, then: str = "") -> None:
        """Submit the login form; the hub starts the user's server (not waited for here), then sends the
        browser to ``then`` (a path on the hub; JupyterLab by default)."""
        page = self.page
        page.goto(f"{self.classroom.url}/hub/login" + (f"?next={quote(then, safe='/')}" if then else ""))
        page.locator("#username_input").fill(self.user)
        page.locator("#password_input").fill(self.classroom.passwords[self.user])
        page.locator("#login_submit").click()
        page.wait_for_url(re.compile(r"/hub/spawn|/user/"))

    def wait_for_lab(self) -> None:
        self.page.wait_for_url(re.compile(rf"/user/{re.escape(self.user)}/lab"), timeout=SPAWN_MS)
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").wait_for(timeout=SPAWN_MS)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=ARTIFACTS / f"{name}.png")

    def menu_entries(self, top: str) -> list[str]:
        """What the menu ``top`` of JupyterLab's menu bar offers (the menu is closed again)."""
        open_menu(self.page, top)
        entries = [e.strip() for e in self.page.locator(".lm-Menu-content .lm-Menu-itemLabel").all_text_contents()]
        self.page.keyboard.press("Escape")
        return [e for e in entries if e]

    def close(self) -> None:
        with suppress(Exception):
            self.context.close()


def _label(text: str):
    return re.compile(rf"^{re.escape(text)}$")


def open_menu(page, top: str) -> None:
    """Open the menu ``top`` (a click on a busy page may not take: try again)."""
    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=_label(top)).first.click()
        try:
            page.locator(".lm-Menu-content .lm-Menu-itemLabel").first.wait_for(state="visible", timeout=10_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    raise AssertionError(f"the menu {top} does not open")


def menu(page, top: str, *items: str) -> None:
    open_menu(page, top)
    for item in items:
        page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=_label(item)).first.click()


class AssignmentsTab:
    """nbgrader's Assignments tab in a student's JupyterLab (its ids are those of nbgrader's own UI tests)."""

    def __init__(self, person: Person):
        self.person = person
        self.page = person.page
        course = person.classroom.settings["course_id"]
        self.item_id = re.sub(r"[^A-Za-z0-9\-_]", "", f"nbgrader-{course}-{A}".replace(" ", "_"))

    def open(self) -> None:
        tab = self.page.locator(".lm-TabBar-tab", has_text=re.compile(r"^Assignments$"))
        if tab.count():
            tab.first.click()
        else:
            menu(self.page, "Nbgrader", "Assignment List")
        self.page.locator("#released_assignments_list").wait_for()

    def rows(self, status: str):
        return self.page.locator(f"#{status}_assignments_list > .list_item")

    def wait_for(self, status: str, refresh: bool = False):
        """The row of assignment A in the list ``status`` (released, fetched, submitted)."""
        row = self.rows(status).filter(has=self.page.locator(".item_name", has_text=A))
        deadline = LIST_MS
        while True:
            try:
                row.first.wait_for(timeout=5_000 if refresh else deadline)
                return row.first
            except Exception:
                deadline -= 5_000
                if not refresh or deadline <= 0:
                    raise
                self.page.locator("#refresh_assignments_list").click()

    def fetch(self) -> None:
        self.wait_for("released", refresh=True).locator(".item_status button", has_text="Fetch").click()
        self.wait_for("fetched")

    def submissions(self) -> int:
        return self.page.locator(f"#{self.item_id}-submissions > .list_item .item_name").filter(
            has_text=re.compile(r"\d{4}-\d\d-\d\d")).count()

    def submit(self) -> None:
        before = self.submissions()
        self.wait_for("fetched").locator(".item_status button", has_text="Submit").click()
        self.page.wait_for_function(
            "([id, n]) => [...document.querySelectorAll('#' + id + '-submissions > .list_item .item_name')]"
            ".filter(e => /\\d{4}-\\d\\d-\\d\\d/.test(e.textContent)).length > n",
            arg=[self.item_id, before], timeout=LIST_MS)

    def open_notebook(self) -> None:
        """The fetched notebook, opened from the tab as a student does (expand, then click its name)."""
        self.wait_for("fetched").locator("a.assignment-notebooks-link").click()
        self.page.locator(f"#{self.item_id} .list_item a", has_text=A).first.click()
        self.page.locator(f"{SHOWN} .jp-Notebook .jp-CodeCell").first.wait_for(timeout=60_000)

    def fetch_feedback(self) -> None:
        self.open()
        self.page.locator("#refresh_assignments_list").click()
        self.wait_for("submitted").locator(".item_status button", has_text="Fetch Feedback").click()
        self.page.locator(f"#{self.item_id}-submissions a", has_text="view feedback").first.wait_for(timeout=LIST_MS)


def solution_of(exercise: str) -> str:
    nb = nbformat.read(solution_path(A), as_version=4)
    source = next(c.source for c in nb.cells if nbgrader_meta(c).get("grade_id") == exercise)
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def release_grade_ids() -> list[str | None]:
    nb = nbformat.read(release_path(A), as_version=4)
    return [nbgrader_meta(cell).get("grade_id") for cell in nb.cells if cell.cell_type == "code"]


def type_answer(page, exercise: str, saved_to) -> None:
    """Replace the exercise's stub with the instructor's solution, typed in, and save (Ctrl+S) until
    the file ``saved_to`` holds it."""
    grade_ids = release_grade_ids()
    answer = solution_of(exercise)
    page.wait_for_function("([shown, count]) => document.querySelectorAll(shown + ' .jp-Notebook .jp-CodeCell').length === count",
                           arg=[SHOWN, len(grade_ids)], timeout=60_000)
    cell = page.locator(f"{SHOWN} .jp-Notebook .jp-CodeCell").nth(grade_ids.index(exercise))
    cell.evaluate("e => e.scrollIntoView({block: 'center'})")
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(answer)
    page.keyboard.press("Escape")
    last_line = answer.strip().splitlines()[-1].strip()
    for _ in range(120):
        page.keyboard.press("Control+s")
        page.wait_for_timeout(500)
        if last_line in saved_to.read_text():
            return
    raise AssertionError(f"the answer to {exercise} was never saved to {saved_to}")


def points_by_cell(classroom, student: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{classroom.course / 'gradebook.db'}", classroom.settings["course_id"]) as gb:
        notebook = gb.find_submission_notebook(A, A, student)
        return {grade.name: (float(grade.score), float(grade.max_score)) for grade in notebook.grades}


def seconds_late(classroom, student: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{classroom.course / 'gradebook.db'}", classroom.settings["course_id"]) as gb:
        return float(gb.find_submission(A, student).total_seconds_late)


def fetched(classroom, student: str):
    """Where nbgrader's fetch put the notebook (Exchange.path_includes_course: under the course's id)."""
    return classroom.home(student) / classroom.settings["course_id"] / A / f"{A}.ipynb"


def inbound_of(classroom, student: str) -> list:
    """The student's submissions in the exchange, oldest first (nbgrader names them user+assignment+time+key)."""
    return sorted((p for p in classroom.exchange.joinpath("inbound").iterdir() if p.name.startswith(f"{student}+{A}+")),
                  key=lambda p: p.joinpath("timestamp.txt").read_text())


# --- the loop -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def people(browser, classroom):
    found: dict[str, Person] = {}

    def person(user: str) -> Person:
        if user not in found:
            found[user] = Person(browser, classroom, user)
        return found[user]

    yield person
    for name, someone in found.items():
        with suppress(Exception):
            someone.shot(f"last-{someone.role}")
        someone.close()


def test_release_fetch_submit_collect_grade_and_feedback_through_the_exchange(classroom, people):
    first, second = classroom.students
    release = classroom.as_instructor("nbgrader", "release_assignment", A, background=True)
    alice, bob = people(first), people(second)
    for student in (alice, bob):  # both servers start while the instructor releases
        student.log_in()
    alice.wait_for_lab()
    output, _ = release.communicate(timeout=300)
    assert release.returncode == 0, output
    assert (classroom.exchange / "outbound" / A / f"{A}.ipynb").exists()

    # A student's JupyterLab has the Assignments tab and Validate, not the instructor's pages.
    entries = alice.menu_entries("Nbgrader")
    assert "Assignment List" in entries and "Formgrader" not in entries, entries

    # The first student fetches, hands in the untouched release, then an answer: a resubmission.
    tab_a = AssignmentsTab(alice)
    tab_a.open()
    tab_a.fetch()
    alice.shot("01_student_fetched")
    tab_a.submit()
    tab_a.open_notebook()
    type_answer(alice.page, "make_linear_data", fetched(classroom, first))
    alice.shot("02_student_answered")
    tab_a.open()
    tab_a.submit()
    assert tab_a.submissions() == 2
    alice.shot("03_student_submitted_twice")

    # The due date passes; the second student hands in an answer after it.
    due = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    set_due = classroom.as_instructor("nbgrader", "db", "assignment", "add", A, f"--duedate={due}", background=True)
    bob.wait_for_lab()
    tab_b = AssignmentsTab(bob)
    tab_b.open()
    tab_b.fetch()
    tab_b.open_notebook()
    type_answer(bob.page, "mse", fetched(classroom, second))
    output, _ = set_due.communicate(timeout=300)
    assert set_due.returncode == 0, output
    tab_b.open()
    tab_b.submit()

    # The instructor collects, grades the collected submitted/ in place and releases the feedback,
    # as in a terminal of the instructor's JupyterLab (whose server starts meanwhile).
    formgrader = f"/user/{classroom.instructor}/formgrader/manage_submissions/{A}"
    teacher = people(classroom.instructor)
    teacher.log_in(then=f"/hub/spawn?next={quote(formgrader)}")  # its server starts, then formgrader opens
    graded = classroom.as_instructor(
        "sh", "-c", f"nbgrader collect {A} && autograder grade {A} --submissions submitted --no-progress "
                    f"&& nbgrader release_feedback {A}")
    report = json.loads((classroom.course / "exports" / A / "report.json").read_text())
    assert report["confinement"].startswith("confined"), report["confinement"]
    for student in (first, second):
        # collect took the latest submission, and grading it in place kept it byte for byte
        handed_in = inbound_of(classroom, student)[-1] / f"{A}.ipynb"
        assert (classroom.course / "submitted" / student / A / f"{A}.ipynb").read_bytes() == handed_in.read_bytes()

    # What the gradebook holds: each student's answer earned its exercise's points, nothing else did.
    exercises = {first: "make_linear_data", second: "mse"}
    for student, exercise in exercises.items():
        scores = points_by_cell(classroom, student)
        earned = {cell for cell, (score, top) in scores.items() if score > 0}
        assert earned == {f"test_{exercise}", f"test_{exercise}_hidden"}, (student, scores, graded)
        assert all(scores[cell][0] == scores[cell][1] for cell in earned), scores
    assert seconds_late(classroom, first) == 0
    assert seconds_late(classroom, second) > 0, "the submission after the due date is not late"

    # Each student fetches their feedback in the Assignments tab and reads it.
    for student, tab in ((alice, tab_a), (bob, tab_b)):
        tab.fetch_feedback()
        student.shot(f"04_feedback_fetched_{student.role}")
        pages = sorted((classroom.home(student.user) / classroom.settings["course_id"] / A / "feedback").glob(f"*/{A}.html"))
        assert len(pages) == 1, pages
        relative = pages[0].relative_to(classroom.home(student.user)).as_posix()
        student.page.goto(f"{classroom.url}/user/{student.user}/files/{relative}")
        text = student.page.locator("body").inner_text()
        exercise = exercises[student.user]
        assert re.search(r"Score:\s*3(\.0)?\s*/\s*15", text), text[:500]
        assert f"test_{exercise}" in text
        assert "BEGIN HIDDEN TESTS" not in text
        student.shot(f"05_feedback_{student.role}")
    assert alice.errors == [] and bob.errors == []

    # The instructor's formgrader, in the instructor's own server (JupyterHub 4.1 and later refuse it
    # in JupyterLab's frame: it opens in a tab of its own), reads the same gradebook.
    teacher.page.wait_for_url(re.compile(re.escape(formgrader)), timeout=SPAWN_MS)
    teacher.page.goto(classroom.url + formgrader)  # it may have opened before grading was done
    table = teacher.page.locator("#main-table")
    for student in (first, second):
        table.locator("td", has_text=student).first.wait_for(timeout=60_000)
    teacher.shot("06_formgrader_submissions")


# --- what a student's server must not see ---------------------------------------------------------


PROBE = '''import json, os, pwd
def probe(path):
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(1)
        return "readable"
    except FileNotFoundError:
        return "absent"
    except PermissionError:
        return "denied"
def importable(name):
    try:
        __import__(name)
        return "importable"
    except ImportError:
        return "absent"
import torch, autograder
found = {p: probe(p) for p in PATHS}
found.update({m: importable(m) for m in MODULES})
found["uid"] = os.getuid()
found["autograder"] = autograder.__file__
found["/root"] = sorted(os.listdir("/root")) if os.path.isdir("/root") else []
print("PROBE" + json.dumps(found))
'''


def test_a_student_sees_neither_solutions_nor_another_students_work_nor_formgrader(classroom, people):
    first, second = classroom.students
    bob = people(second)
    if not bob.page.url.startswith(classroom.url):  # this test alone: log in first
        bob.log_in()
        bob.wait_for_lab()
    root, course_id = str(ROOT), classroom.settings["course_id"]
    must_not_see = [
        f"{root}/solutions/{A}/{A}.ipynb",                       # the instructor's source
        f"{root}/autograder/checks/instructor/{A}.py",           # the instructor checks (hidden data)
        f"{root}/autograder/cases",                              # planted mistakes and correct alternatives
        f"{root}/nbgrader_config.py",
        str(classroom.home(first)),                              # the other student's home
        str(classroom.home(first) / course_id / A / f"{A}.ipynb"),
        str(classroom.course),                                   # the instructor's course folder
        str(classroom.course / "gradebook.db"),
        str(classroom.dir / "state"),                            # the hub's (password hashes)
    ]
    not_listable = [str(classroom.exchange / "inbound"), str(classroom.exchange / "feedback")]
    own = [str(classroom.home(second)), str(classroom.exchange / "outbound" / A / f"{A}.ipynb"),
           f"{root}/autograder/checks/{A}.py"]
    modules = ["autograder.checks.instructor", "autograder.grading", f"autograder.checks.instructor.{A}", "autograder.cases"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"PATHS = {must_not_see + not_listable + own!r}\nMODULES = {modules!r}\n" + PROBE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    probe_path = classroom.home(second) / "probe.ipynb"
    nbformat.write(nb, probe_path)
    uid, gid = classroom.settings["users"][second]["uid"], classroom.settings["users"][second]["gid"]
    import os

    os.chown(probe_path, uid, gid)

    page = bob.page
    page.goto(f"{classroom.url}/user/{second}/lab/tree/probe.ipynb")
    page.locator(f"{SHOWN} .jp-Notebook .jp-CodeCell").first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')].some(e => /\\|\\s*Idle\\s*$/.test(e.textContent))",
        timeout=90_000)
    menu(page, "Run", "Run All Cells")
    output = page.locator(f"{SHOWN} .jp-OutputArea-output", has_text="PROBE").first
    output.wait_for(timeout=90_000)
    bob.shot("07_student_probe")
    found = json.loads(output.inner_text().split("PROBE", 1)[1])
    assert found["uid"] == uid, "the student's kernel does not run as the student's account"
    assert found["autograder"] == f"{root}/autograder/__init__.py"
    for path in must_not_see:
        assert found[path] == "absent", f"a student's kernel can see {path}: {found[path]}"
    for path in not_listable:
        assert found[path] == "denied", f"a student's kernel can list {path}: {found[path]}"
    for path in own:
        assert found[path] == "readable", f"a student's kernel cannot read {path}: {found[path]}"
    for module in modules:
        assert found[module] == "absent", f"a student's kernel can import {module}"
    assert set(found["/root"]) <= {".pyenv"}, found["/root"]

    # Formgrader: not in the student's own server, and the instructor's server is not theirs to open.
    for url, expected in [(f"/user/{second}/formgrader", 404), (f"/user/{classroom.instructor}/formgrader", 403),
                          (f"/user/{first}/lab", 403)]:
        response = page.goto(classroom.url + url)
        assert response.status == expected, f"{url}: {response.status}"
    bob.shot("08_student_refused_formgrader")
