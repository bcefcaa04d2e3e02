"""A learner's progress as a picture (PNG) and a page (self-contained HTML).

One row per notebook, one tile per exercise, coloured by what became of it;
the page adds, under the picture, the first diagnosis of every exercise that
does not pass yet.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from autograder.selfcheck import CHECKED, NotebookReport, stakes, total_stakes
from autograder.verdicts import Status

COLOURS = {Status.PASSED: "#4caf50", Status.FAILED: "#e57373", Status.TODO: "#cfd8dc", Status.NOT_RUN: "#ffb74d"}
LABELS = {Status.PASSED: "passes", Status.FAILED: "needs work", Status.TODO: "not written yet",
          Status.NOT_RUN: "did not run"}
SHOWN_AS = {Status.RAISED: Status.FAILED}  # an error in your code needs work like any other failure


def _points(value: float) -> str:
    return f"{value:g}"


def draw(reports: list[NotebookReport]) -> Figure:
    columns = max((len(r.exercises) for r in reports), default=1)
    rows = len(reports)
    fig = Figure(figsize=(2.4 + 2.0 * columns, 1.3 + 0.6 * rows), dpi=110)
    ax = fig.add_axes((0.0, 0.1, 1.0, 0.78))
    ax.set_xlim(-2.4, 2.0 * columns + 0.1)
    ax.set_ylim(rows, 0)
    ax.axis("off")
    score, total = sum(r.score for r in reports), sum(r.max_score for r in reports)
    summary = (total_stakes(reports) if any(r.hidden for r in reports)
               else f"{_points(score)} of {_points(total)} points")
    fig.suptitle(f"torch.nn, step by step: {summary}", fontsize=13, y=0.97)
    for row, report in enumerate(reports):
        state = "" if report.state == CHECKED else f"\n{report.state}"
        ax.text(-2.3, row + 0.45, f"{report.notebook}\n{_points(report.score)}/{_points(report.max_score)}{state}",
                va="center", fontsize=8.5, linespacing=1.3)
        for column, exercise in enumerate(report.exercises):
            ax.add_patch(FancyBboxPatch((2.0 * column + 0.05, row + 0.1), 1.9, 0.7,
                                        boxstyle="round,pad=0,rounding_size=0.08",
                                        facecolor=COLOURS[_shown(exercise)], edgecolor="white"))
            ax.text(2.0 * column + 1.0, row + 0.45,
                    f"{exercise.exercise}\n{_points(exercise.points)}/{_points(exercise.max_points)}",
                    ha="center", va="center", fontsize=7.5)
    fig.legend(handles=[Patch(color=COLOURS[s], label=LABELS[s]) for s in COLOURS],
               loc="lower center", ncol=len(COLOURS), frameon=False, fontsize=8)
    return fig


def png_bytes(reports: list[NotebookReport]) -> bytes:
    buffer = io.BytesIO()
    draw(reports).savefig(buffer, format="png")
    return buffer.getvalue()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your progress: torch.nn, step by step</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; color: #263238; }}
img {{ max-width: 100%; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 1.5em; }}
td, th {{ text-align: left; vertical-align: top; padding: .3em .6em; border-bottom: 1px solid #eceff1; }}
td.status {{ white-space: nowrap; }}
.passed {{ color: #2e7d32; }} .failed {{ color: #c62828; }} .todo {{ color: #607d8b; }} .notrun {{ color: #ef6c00; }}
code {{ background: #f5f5f5; padding: 0 .2em; }}
</style></head><body>
<h1>Your progress</h1>
<p><img alt="one row per notebook, one tile per exercise" src="data:image/png;base64,{png}"></p>
{sections}
<p>Check one notebook in detail: <code>make check NB=my-work/&lt;notebook&gt;/&lt;notebook&gt;.ipynb</code></p>
</body></html>
"""

CSS_CLASS = {Status.PASSED: "passed", Status.FAILED: "failed", Status.TODO: "todo", Status.NOT_RUN: "notrun"}


def _shown(exercise) -> str:
    return SHOWN_AS.get(exercise.status, exercise.status)


def _section(report: NotebookReport) -> str:
    e = html.escape
    state = "" if report.state == CHECKED else f" ({e(report.state)})"
    rows = "".join(
        f'<tr><td><code>{e(x.exercise)}</code></td><td>{_points(x.points)}/{_points(x.max_points)}'
        + (f' (+{_points(report.hidden[x.exercise])} in hidden tests)' if report.hidden.get(x.exercise) else "")
        + '</td>'
        f'<td class="status {CSS_CLASS[_shown(x)]}">{e(LABELS[_shown(x)])}</td>'
        f'<td>{e(x.message) if report.state == CHECKED and not x.passed else ""}</td></tr>'
        for x in report.exercises)
    faults = "".join(f"<li>{e(f)}</li>" for f in report.faults)
    score = stakes(report) if report.hidden else f"{_points(report.score)}/{_points(report.max_score)}"
    return (f"<h2>{e(report.notebook)}: {e(score)}{state}</h2>"
            + (f"<ul>{faults}</ul>" if faults else "")
            + f"<table><tr><th>exercise</th><th>points</th><th>status</th><th>what to fix</th></tr>{rows}</table>")


def save(reports: list[NotebookReport], folder: Path) -> tuple[Path, Path]:
    """Write progress.png and progress.html into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = png_bytes(reports)
    png, page = folder / "progress.png", folder / "progress.html"
    png.write_bytes(picture)
    page.write_text(PAGE.format(png=base64.b64encode(picture).decode("ascii"),
                                sections="\n".join(_section(r) for r in reports)), encoding="utf-8")
    return png, page
