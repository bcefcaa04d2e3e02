"""Layer 1, the checks: for each exercise, the rules its text states, each with a planted mistake that
breaks exactly it (caught by that rule's check, with that rule's diagnosis), and correct answers written
another way that every check accepts. These run the checks in this process, against the instructor's
solutions with one piece swapped (support.solution_namespace)."""
