"""Models: the window risk model, the sepsis model and RQ4's model updated in the stream,
with their evaluation and the tables they feed.

Imports ``core``, ``services`` and the stages up to ``experiments``, and itself.
"""
