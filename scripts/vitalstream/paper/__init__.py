"""Paper: the paper's inputs (LaTeX macros, design values, definition tables, the figure style,
the figure/table map, the LaTeX log check, the results archive).

Last stage: may import every other stage.
"""
