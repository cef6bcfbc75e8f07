"""Serving: a run for its readers (the search index read back, the HTML dashboard, Tableau Hyper
extracts, Kibana saved objects, the serving section's values).

Imports ``core``, ``services`` and the stages up to ``models``, and itself.
"""
