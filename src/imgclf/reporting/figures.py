"""The one figure factory: every picture imgclf draws starts from `new_figure`."""

from __future__ import annotations

from pathlib import Path


def new_figure(figsize: tuple[float, float], dpi: int | None = None):
    """A bare Figure on the Agg canvas: no pyplot global state, so it works headless, in
    threads and DDP ranks, and leaves a notebook's own plotting backend alone. Jupyter shows
    it when it is a cell's value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: Path, dpi: int = 80) -> Path:
    """`fig` as a PNG at `path` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path
