"""What grading one submission found: one model from where the notebook runs to the reports.

A :class:`SubmissionResult` is made once, by the submission's grading right
after its notebook ran (:mod:`.submission`; on a cluster, on the worker). It
travels as it is: back from a worker, into the state file that lets a later run
resume, into ``report.json``. The reports only render it (:mod:`.report`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum

from autograder.verdicts import ExerciseVerdict, Status

# 4: the journal; 3: one result model (exercises as verdicts, the status an enum); 2: "reasons" became "faults".
# A state file of another version is not read: its student is graded again.
STATE_VERSION = 4


class SubmissionStatus(StrEnum):
    GRADED = "graded"
    NOT_GRADED = "not graded"  # the submission could not be run: every test scored zero, with the reason
    FAILED = "failed"  # grading itself went wrong: graded again by the next run


@dataclass
class SubmissionResult:
    student: str
    score: float
    max_score: float
    status: SubmissionStatus
    faults: list[str] = field(default_factory=list)  # what went wrong, and so cost points
    notes: list[str] = field(default_factory=list)  # facts that cost nothing
    tamper: list[str] = field(default_factory=list)  # evidence of interfering with grading
    exercises: list[ExerciseVerdict] = field(default_factory=list)
    feedback: str = ""  # the feedback file, "" when none was written
    seconds: float = 0.0  # wall time of this student's grading, kernel included
    kernel_seconds: float = 0.0  # of which the notebook ran in its kernel
    journal: list[str] = field(default_factory=list)  # cell by cell, what the judge and the guard decided
    fingerprint: str = ""  # of the student's files (the pipeline sets it)
    source: str = ""  # of the assignment, the autograder's code and the settings (the pipeline sets it)
    state_version: int = STATE_VERSION

    @classmethod
    def failed(cls, student: str, fault: str, notes: list[str] | None = None) -> "SubmissionResult":
        """Grading went wrong altogether: no score, the reason, and the next run grades it again."""
        return cls(student, 0.0, 0.0, SubmissionStatus.FAILED, [fault], list(notes or []))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "SubmissionResult":
        """The inverse of :meth:`to_json`; TypeError or ValueError for anything else (an older state file)."""
        if data.get("state_version") != STATE_VERSION:
            raise ValueError(f"a result of state version {data.get('state_version')}, not {STATE_VERSION}")
        known = {f.name for f in fields(ExerciseVerdict)}
        exercises = []
        for exercise in data["exercises"]:
            if set(exercise) - known:
                raise TypeError(f"not an exercise verdict: {sorted(set(exercise) - known)}")
            exercises.append(ExerciseVerdict(**{**exercise, "status": Status(exercise["status"])}))
        return cls(**{**data, "status": SubmissionStatus(data["status"]), "exercises": exercises})
