"""The course as a whole: its structure, the release, the student pack, the pinned environment and the
benchmarks' own code."""
