"""One style for every figure: seaborn's whitegrid, readable sizes, PNGs at 150 dpi, written atomically."""

from __future__ import annotations

import io
from pathlib import Path

from experiments.common.runs import atomic_write_bytes

_STYLED = False


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, with the project's style applied once."""
    global _STYLED
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if not _STYLED:
        import seaborn as sns

        sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)
        _STYLED = True
    return plt


def save(fig, path: Path | str) -> Path:
    """Save ``fig`` as a PNG at ``path`` (atomically) and close it."""
    plt = pyplot()
    path = Path(path)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
