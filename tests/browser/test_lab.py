"""The course in a real browser, as students and instructors use it.

``make lab`` starts JupyterLab in a throwaway copy of the course (loopback, a
free port, a token, private Jupyter dirs), and Debian's Chromium, driven by
Playwright, does what a student does: open a released notebook from my-work/,
run all cells, read the reports of the unfinished exercises, type one
solution, see its test pass and press nbgrader's Validate button, and open
one of an exercise's hints. An
instructor opens formgrader. A screenshot of each step is kept in
build/browser-artifacts/.

Nothing here downloads a browser: the tests use /usr/bin/chromium (Debian's
package, which .ci/run installs) and skip, saying so, where it is missing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path

import nbformat
import pytest

from autograder import registry
from autograder.nbgrader_hooks import is_test_cell
from support import CHROMIUM, CHROMIUM_FLAGS, RELEASE, ROOT, SOLUTIONS, nbgrader_meta, release_path, solution_path
from support import chromium_or_skip as _chromium_or_skip, free_port as _free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = ROOT / "build" / "browser-artifacts"
# A common laptop screen: JupyterLab's file browser open beside the notebook.
VIEWPORT = {"width": 1280, "height": 800}
# What make lab needs from the course: its Makefile and pins, the nbgrader course, the Jupyter settings.
COURSE_FILES = ["Makefile", "pyproject.toml", "nbgrader_config.py", str(RELEASE.relative_to(ROOT)),
                str(SOLUTIONS.relative_to(ROOT)), "jupyter-config"]

NOTEBOOK = registry.notebooks()[0]
SERVER_START_S = 90
KERNEL_IDLE_MS = 90_000
RUN_ALL_MS = 180_000
VALIDATE_MS = 180_000
# Formgrader looks for nbgrader's exchange (release/collect, which this course does not use)
# whenever it lists assignments, and logs that it is missing; its page says so in a banner.
EXPECTED_SERVER_NOISE = re.compile(r"Unwritable directory, please contact your instructor: \S*nbgrader/exchange$")
# JupyterLab renders errors and stderr alike with this MIME type.
STDERR = "application/vnd.jupyter.stderr"
# The notebook in the tab being shown (JupyterLab keeps other tabs in the page, hidden).
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden)"


class Lab:
    """JupyterLab as ``make lab`` starts it, in a copy of the course."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.course = scratch / "course"
        self.course.mkdir()
        for name in COURSE_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.course / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            else:
                shutil.copy2(source, self.course / name)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = scratch / "jupyterlab.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        venv = Path(sys.prefix)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("JUPYTER", "JPY_")) and key not in ("IPYTHONDIR", "MPLBACKEND")}
        for name, variable in [("config", "JUPYTER_CONFIG_DIR"), ("data", "JUPYTER_DATA_DIR"),
                               ("runtime", "JUPYTER_RUNTIME_DIR"), ("ipython", "IPYTHONDIR")]:
            folder = self.scratch / name
            folder.mkdir()
            env[variable] = str(folder)
        lab_args = ["--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0", "--no-browser",
                    f"--IdentityProvider.token={self.token}"]
        as_root = ["ALLOW_ROOT=1"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # a CI container
        command = ["make", "--no-print-directory", "-C", str(self.course),
                   # the project's environment is the one running these tests: use it, never reinstall it
                   f"VENV={venv}", "-o", f"{venv}/.installed",
                   "lab", "LAB_ARGS=" + " ".join(lab_args), *as_root]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, cwd=self.course, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"make lab exited with {self.process.returncode}:\n{self.log()}")
            with suppress(OSError):
                if self.api("GET", "/api/status").get("started"):
                    return
            time.sleep(0.5)
        raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_S} s:\n{self.log()}")

    def api(self, method: str, path: str) -> dict:
        request = urllib.request.Request(self.url + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def stop(self) -> None:
        """Shut the server down (its kernels with it); kill what is left of the process group."""
        if self.process is None or self.process.poll() is not None:
            return
        with suppress(OSError, urllib.error.URLError):
            self.api("POST", "/api/shutdown")
        for sig, grace in [(None, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 5)]:
            if sig is not None:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
                break

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def server_errors(self) -> list[str]:
        return [line for line in self.log().splitlines()
                if (re.match(r"\[(E|C) ", line) or "Traceback" in line) and not EXPECTED_SERVER_NOISE.search(line)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _chromium_or_skip()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.copy(server.log_path, ARTIFACTS / "jupyterlab.log")


@pytest.fixture(scope="module")
def browser(lab):
    sync_api = _chromium_or_skip()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, lab, request):
    """A fresh browser tab; its console errors are collected, its last state kept as a screenshot."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.console_errors = []
    tab.on("console", lambda message: message.type == "error" and tab.console_errors.append(message.text))
    tab.on("pageerror", lambda error: tab.console_errors.append(str(error)))
    try:
        yield tab
    finally:
        with suppress(Exception):
            tab.screenshot(path=ARTIFACTS / f"last-{request.node.name}.png")
        if tab.console_errors:
            (ARTIFACTS / f"console-{request.node.name}.txt").write_text("\n".join(tab.console_errors))
        context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png")


def reveal(page, locator, block: str = "center") -> None:
    """Scroll ``locator`` into view and let the browser paint it (JupyterLab renders off-screen cells lazily)."""
    locator.evaluate("(e, block) => e.scrollIntoView({block})", block)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    page.wait_for_timeout(300)


def open_lab(page, lab) -> None:
    """Log in with the token as a learner's browser does, landing where make lab sends them."""
    page.goto(f"{lab.url}/?token={lab.token}")
    page.locator(".jp-DirListing-item").first.wait_for()


def wait_for_kernel_idle(page) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')].some(e => /\\|\\s*Idle\\s*$/.test(e.textContent))",
        timeout=KERNEL_IDLE_MS)


def code_cells(page):
    return page.locator(f"{SHOWN} .jp-Notebook .jp-CodeCell")


def prompts(page) -> list[str]:
    return code_cells(page).evaluate_all("cells => cells.map(c => c.querySelector('.jp-InputPrompt').textContent.trim())")


def wait_for_code_cells(page, count: int) -> None:
    """Until the notebook shows ``count`` code cells (JupyterLab attaches a long notebook's cells in batches)."""
    page.wait_for_function(
        "([shown, count]) => document.querySelectorAll(shown + ' .jp-Notebook .jp-CodeCell').length === count",
        arg=[SHOWN, count], timeout=KERNEL_IDLE_MS)


def wait_until_every_code_cell_ran(page, count: int) -> None:
    """Until each of the notebook's ``count`` code cells shows an execution count (so its outputs are in)."""
    page.wait_for_function(
        """([shown, count]) => {
               const ps = [...document.querySelectorAll(shown + ' .jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                              .map(e => e.textContent.trim());
               return ps.length === count && ps.every(p => /^\\[\\d+\\]:$/.test(p)); }""",
        arg=[SHOWN, count], timeout=RUN_ALL_MS, polling=250)


def output_text(cell) -> str:
    # textContent, not innerText: JupyterLab skips rendering cells off screen.
    return cell.locator(".jp-OutputArea").evaluate("e => e.textContent")


def menu(page, *path: str) -> None:
    for item in path:
        page.locator(".lm-MenuBar-itemLabel, .lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$")).first.click()


def release_cells(lab) -> list:
    """The released notebook's code cells, in the order JupyterLab shows them."""
    nb = nbformat.read(lab.course / release_path(NOTEBOOK).relative_to(ROOT), as_version=4)
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def solution_of(exercise: str) -> str:
    nb = nbformat.read(solution_path(NOTEBOOK), as_version=4)
    source = next(c.source for c in nb.cells if nbgrader_meta(c).get("grade_id") == exercise)
    return "\n".join(line for line in source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def test_make_lab_opens_my_work_with_every_assignment_and_no_broken_extension(page, lab):
    open_lab(page, lab)
    assert page.url.startswith(f"{lab.url}/lab/tree/my-work")
    listed = page.locator(".jp-DirListing-item .jp-DirListing-itemText").all_text_contents()
    assert sorted(name.strip() for name in listed) == registry.notebooks()
    menu(page, "Nbgrader")
    entries = [e.strip() for e in page.locator(".lm-Menu-content .lm-Menu-itemLabel").all_text_contents() if e.strip()]
    shot(page, "01_my_work")
    page.keyboard.press("Escape")
    # The course has no nbgrader exchange: the student pages that need one are switched off.
    assert "Assignment List" not in entries and "Course List" not in entries
    assert "Formgrader" in entries
    assert page.console_errors == []
    assert lab.server_errors() == []


def test_a_student_runs_a_release_fills_in_an_exercise_and_validates(page, lab):
    cells = release_cells(lab)
    grade_ids = [nbgrader_meta(cell).get("grade_id") for cell in cells]
    exercises = registry.exercises(NOTEBOOK)
    first = next(gid for gid in grade_ids if gid in exercises)

    open_lab(page, lab)
    page.locator(".jp-DirListing-item", has_text=NOTEBOOK).first.dblclick()
    page.locator(".jp-DirListing-item", has_text=f"{NOTEBOOK}.ipynb").first.dblclick()
    wait_for_code_cells(page, len(cells))
    wait_for_kernel_idle(page)

    # Run all: every cell runs, each unfinished exercise's test says what to do, nothing else fails.
    menu(page, "Run", "Run All Cells")
    wait_until_every_code_cell_ran(page, len(cells))
    wait_for_kernel_idle(page)
    dom_cells = code_cells(page)
    for index, cell in enumerate(cells):
        text = output_text(dom_cells.nth(index))
        failed = dom_cells.nth(index).locator(f'.jp-OutputArea-output[data-mime-type="{STDERR}"]').count() > 0
        if is_test_cell(cell) and "check(" in cell.source:  # a visible test; the release's hidden ones are a comment
            exercise = registry.exercise_of_grade_id(grade_ids[index])
            assert failed and f"ChecksFailed: ✘ {exercise}: `{exercise}` is not written yet" in text, text
            assert "raise NotImplementedError()" in text, "the report should say which line to replace"
        else:
            assert not failed, f"cell {index + 1} ({grade_ids[index] or 'not graded'}) failed: {text}"
    test_index = grade_ids.index(f"test_{first}")
    reveal(page, dom_cells.nth(test_index))
    shot(page, "02_run_all_reports_unfinished_exercises")

    # Type the first exercise's solution, run it, then its test cell.
    solution_cell = dom_cells.nth(grade_ids.index(first))
    reveal(page, solution_cell)
    solution_cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(solution_of(first))
    page.keyboard.press("Control+Enter")
    test_cell = dom_cells.nth(test_index)
    before = prompts(page)[test_index]
    test_cell.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        """([shown, i, before]) => {
               const p = document.querySelectorAll(shown + ' .jp-Notebook .jp-CodeCell .jp-InputPrompt')[i].textContent.trim();
               return p !== before && /^\\[\\d+\\]:$/.test(p); }""", arg=[SHOWN, test_index, before], timeout=60_000)
    text = output_text(test_cell)
    assert re.search(rf"✔ {first}: all \d+ checks passed\.", text), text
    assert test_cell.locator(".jp-OutputArea-executeResult").count() == 0, "the test cell shows a value after its verdict"
    page.keyboard.press("Escape")
    reveal(page, solution_cell)
    shot(page, "03_the_typed_solution_passes")
    # The picture in the README: this exercise passes, the next one says what is missing.
    reveal(page, test_cell, block="start")
    shot(page, "03b_one_passes_the_next_is_missing")

    # Validate: nbgrader saves, runs the whole notebook in a new kernel and lists the tests that fail.
    page.locator(f"{SHOWN} .jp-Toolbar .jp-ToolbarButtonComponent", has_text="Validate").first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=VALIDATE_MS)
    page.wait_for_timeout(300)
    shot(page, "04_validate_verdict")
    verdict = dialog.evaluate("e => e.textContent")
    assert "Validation Results" in verdict
    unfinished = [gid for gid in grade_ids if gid in exercises and gid != first]
    for exercise in unfinished:
        assert f'check("{exercise}")' in verdict and f"✘ {exercise}:" in verdict, verdict
    assert f'check("{first}")' not in verdict, "Validate still reports the exercise that passes"
    dialog.get_by_role("button", name="Ok").click()
    assert page.console_errors == []
    assert lab.server_errors() == []


def test_a_hint_opens_when_clicked_and_renders_its_markdown(page, lab):
    nb = nbformat.read(lab.course / release_path(NOTEBOOK).relative_to(ROOT), as_version=4)
    index = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown" and "<details>" in cell.source)
    open_lab(page, lab)
    page.locator(".jp-DirListing-item", has_text=NOTEBOOK).first.dblclick()
    page.locator(".jp-DirListing-item", has_text=f"{NOTEBOOK}.ipynb").first.dblclick()
    wait_for_code_cells(page, len(release_cells(lab)))
    cell = page.locator(f"{SHOWN} .jp-Notebook .jp-Cell").nth(index)
    reveal(page, cell)
    hint = cell.locator(".jp-RenderedMarkdown details").first
    hint.wait_for(state="attached")
    summary = hint.locator("summary")
    body = hint.locator(":scope > :not(summary)").first
    # Closed at first: only the summary line shows, the hint itself is hidden until asked for.
    assert summary.inner_text().startswith("Hint 1"), summary.inner_text()
    assert hint.evaluate("e => e.open") is False and not body.is_visible()
    shot(page, "08_hint_closed")
    summary.click()
    page.wait_for_function("e => e.open", arg=hint.element_handle())
    body.wait_for(state="visible")
    # Rendered as markdown inside the HTML block: inline code became <code>, no backticks are left.
    text = hint.evaluate("e => e.textContent")
    assert hint.locator("code").count() > 0 and "`" not in text, text
    reveal(page, hint)
    shot(page, "09_hint_open")
    assert page.console_errors == []
    assert lab.server_errors() == []


def test_an_instructor_finds_every_assignment_in_formgrader(page, lab):
    open_lab(page, lab)
    menu(page, "Nbgrader", "Formgrader")
    formgrader = page.frame_locator(".jp-MainAreaWidget iframe").first
    table = formgrader.locator("#main-table")
    # The list arrives from formgrader's API, which first creates the course's gradebook.
    table.locator("td.name").first.wait_for(timeout=60_000)
    table.evaluate("e => e.scrollIntoView({block: 'center'})")
    shot(page, "05_formgrader_lists_the_assignments")
    names = [n.strip() for n in table.locator("td.name").all_text_contents()]
    assert sorted(names) == registry.notebooks()
    assert page.console_errors == []
    assert lab.server_errors() == []


SCRATCH = "browser-scratch.ipynb"  # beside my-work/, not in it
RICH_OUTPUTS = [
    # a progress bar as notebooks show training: tqdm.auto picks the ipywidgets bar in JupyterLab
    "from tqdm.auto import tqdm\nfor _ in tqdm(range(40), desc='epochs'):\n    pass",
    # a torchinfo table: must be monospace and unwrapped to read as a table
    "import torch\nfrom torchinfo import summary\n"
    "model = torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))\n"
    "print(summary(model, input_size=(1, 30), verbose=0))",
    # a matplotlib figure, inline
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(5, 2.5))\nax.plot([0.69, 0.4, 0.25, 0.2])\n"
    "ax.set_xlabel('epoch'); ax.set_ylabel('loss')\nplt.show()",
]


def test_progress_bars_tables_and_plots_render(page, lab):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in RICH_OUTPUTS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, lab.course / SCRATCH)
    page.goto(f"{lab.url}/lab/tree/{SCRATCH}?token={lab.token}")
    wait_for_code_cells(page, len(RICH_OUTPUTS))
    wait_for_kernel_idle(page)
    menu(page, "Run", "Run All Cells")
    wait_until_every_code_cell_ran(page, len(RICH_OUTPUTS))
    wait_for_kernel_idle(page)
    progress, table, plot = (code_cells(page).nth(i) for i in range(3))

    # tqdm drew an ipywidgets progress bar, not the text fallback or "IProgress not found" on stderr.
    progress.locator(".widget-hprogress .progress-bar").wait_for()
    assert "40/40" in output_text(progress)
    assert progress.locator(f'[data-mime-type="{STDERR}"]').count() == 0, output_text(progress)

    pre = table.locator(".jp-OutputArea-output pre").first
    reveal(page, pre)
    layout = pre.evaluate("""pre => {
        const style = getComputedStyle(pre);
        const width = text => { const span = document.createElement('span');
            span.style.font = style.font; span.style.whiteSpace = 'pre'; span.textContent = text;
            document.body.appendChild(span); const w = span.getBoundingClientRect().width; span.remove(); return w; };
        const lines = pre.textContent.replace(/\\n$/, '').split('\\n');
        return {narrow: width('i'.repeat(40)), wide: width('M'.repeat(40)), lines: lines.length,
                rows: pre.getBoundingClientRect().height / parseFloat(style.lineHeight)}; }""")
    assert abs(layout["narrow"] - layout["wide"]) < 1, f"the table is not in a monospace font: {layout}"
    assert layout["rows"] < layout["lines"] + 0.5, f"the table's lines wrap: {layout}"
    shot(page, "06_progress_bar_and_table")

    image = plot.locator('.jp-OutputArea-output[data-mime-type="image/png"] img').first
    reveal(page, image)
    assert image.evaluate("img => img.complete && img.naturalWidth") > 100
    shot(page, "07_plot")
    assert page.console_errors == []
    assert lab.server_errors() == []
