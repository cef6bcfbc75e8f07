"""Measure: what a run's output says (counts, throughput, latency, consumer lag, diagnostic
accuracy, the summaries the notebooks read).

Imports ``core``, ``services`` and the stages up to ``sinks``, and itself.
"""
