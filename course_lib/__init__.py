"""Shared, student-facing code for the course labs: devices, data, training loop, plots, checks.

No lab's answers live here: what students must write stays in the notebooks.
"""
from .budget import budget, is_graded

__all__ = ["budget", "is_graded"]
