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
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (`{frames[-1].name}`)" if frames and frames[-1].name != "<module>" else ""
        print(f"→ Skipped: this cell uses an exercise that is not written yet{where}. "
              "Finish it, then run this cell again.")
