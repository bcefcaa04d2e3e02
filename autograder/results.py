"""What a check finds, as facts that every front end can read.

A check raises :class:`CheckFailure` when the learner's code is wrong. The
runner turns every outcome into a :class:`CheckResult`, which the notebook
adapter prints, pytest reports, and the command-line tools tabulate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

PASSED = "passed"
FAILED = "failed"  # the learner's answer is wrong
ERROR = "error"  # the learner's code raised while being checked
NOT_IMPLEMENTED = "not_implemented"  # the exercise still raises NotImplementedError
NOT_DEFINED = "not_defined"  # the name the exercise asks for does not exist
SKIPPED = "skipped"  # not run, because an earlier check showed it cannot pass

# The file the runner appends each check's result to, named in the kernel's environment by
# whoever runs the notebook. Here, not in the runner, so reading it does not import torch.
RESULTS_ENV = "AUTOGRADER_RESULTS"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters at a word boundary, with an ellipsis when cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(None, 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:") + " …"


class CheckFailure(AssertionError):
    """The learner's answer is wrong; ``code`` names the mistake in a stable, short form. ``message`` says
    what was found, what was expected and the likely cause; ``fix``, the exact change that repairs it,
    is shown only after the same check has failed the same way several times (see the runner)."""

    def __init__(self, message: str, code: str = "wrong_answer", fix: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.fix = fix


def fail(message: str, code: str = "wrong_answer", fix: str = "") -> None:
    """Stop the current check with a diagnosis (and, for later, the exact fix)."""
    __tracebackhide__ = True
    raise CheckFailure(message, code, fix)


def expect(condition: object, message: str, code: str = "wrong_answer", fix: str = "") -> None:
    """Fail with ``message`` unless ``condition`` is true.

    ``condition`` must be a real ``bool``: an object whose ``__bool__`` was
    rewritten to always say yes does not get through.
    """
    __tracebackhide__ = True
    if condition is not True:
        raise CheckFailure(message, code, fix)


@dataclass
class CheckResult:
    notebook: str
    exercise: str
    check: str
    status: str
    message: str = ""
    code: str = ""
    hidden: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    fix: str = ""  # the exact fix, once the learner has met this failure several times ("" otherwise)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def title(self) -> str:
        return self.check.replace("_", " ")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> "CheckResult":
        return cls(**json.loads(line))
