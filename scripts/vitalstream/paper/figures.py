"""One figure style for the whole paper, used by every notebook.

Fonts match the paper's Computer Modern (matplotlib ships cmr10), the palette is seaborn's
colour-blind-safe one, sizes fit a single-column figure, and output is vector PDF with embedded
TrueType fonts. Call ``apply_style()`` once at the top of a notebook and save with ``save()``.

Not for: computing what is plotted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl
import seaborn as sns

# Width of the paper's text block (a4paper, 25 mm margins), inches.
TEXT_WIDTH_IN = 6.3
PALETTE = "colorblind"

RC: dict[str, Any] = {
    "font.family": "serif",
    "font.serif": ["cmr10", "DejaVu Serif"],
    "mathtext.fontset": "cm",
    "axes.formatter.use_mathtext": True,
    "axes.unicode_minus": False,
    "font.size": 9,
    "axes.labelsize": 9,
    "axes.titlesize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 150,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,
    "pdf.compression": 9,
}


def apply_style() -> None:
    """Set the paper's figure style for every figure made after the call."""
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, rc=RC)
    mpl.rcParams.update(RC)
    # Deterministic PDFs: no creation date, so a re-run writes the same bytes.
    mpl.rcParams["pdf.compression"] = 9


def figure_size(width_fraction: float = 1.0, aspect: float = 0.5) -> tuple[float, float]:
    """(width, height) in inches for a figure spanning ``width_fraction`` of the text width."""
    width = TEXT_WIDTH_IN * width_fraction
    return width, width * aspect


def save(fig: Any, path: str | Path) -> Path:
    """Save a figure as vector PDF without a time stamp, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"CreationDate": None, "Creator": "VitalStream"})
    return path
