"""Layer 3, grading a class: nbgrader's steps with the course's run core, confinement, tampering,
dead kernels, clusters and resuming."""
