"""One module of checks per notebook, named after the notebook it grades.

The module names start with the notebook's number (``02_manual_model``), so
they are loaded by name through :mod:`autograder.registry`, never imported
with an ``import`` statement.
"""
