"""Reference: the batch reference (the stream's windows, scores and alerts recomputed with
pandas) and its comparison with a streaming run.

Imports ``core``, ``services`` and the stages up to ``measure``, and itself.
"""
