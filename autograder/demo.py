"""Demo cells that wait politely for unfinished exercises.

A notebook's demonstrations use the learner's functions. Before the learner
has written them, a traceback there would only add noise next to the test
cells, which already say what is missing. Wrapping a demo in
``with skip_if_unfinished():`` turns a ``NotImplementedError`` into one line;
every other error still shows, because it points at a real bug.
"""

from __future__ import annotations

import contextlib
import traceback


@contextlib.contextmanager
def skip_if_unfinished():
    try:
        yield
    except NotImplementedError as exc:
        name = _unfinished_name(exc)
        where = f" (`{name}`)" if name else ""
        print(f"→ Skipped: this cell uses an exercise that is not written yet{where}.\n"
              "  Finish it, then run this cell again.")


def _unfinished_name(exc: NotImplementedError) -> str:
    """The function that raised, or the class whose method did (``SimpleModel``, not ``__init__``)."""
    *_, (frame, _) = traceback.walk_tb(exc.__traceback__)
    name = frame.f_code.co_name
    if name == "<module>":
        return ""
    owner = frame.f_locals.get("self")
    return type(owner).__name__ if owner is not None else name
