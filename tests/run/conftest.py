"""Layer 2, running a notebook as a learner does: `autograder check`, `pytest --nbcheck` and the one
execution core under them (what a notebook that loops, crashes or is not a notebook gets)."""
