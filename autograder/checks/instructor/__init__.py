"""Instructor checks: the ones that know the answer (reference implementations, hidden data).

They run in hidden test cells only, and ``autograder pack`` leaves this folder out of the
student pack. See :mod:`autograder.registry`.
"""
