"""Optional matplotlib charts for the benchmarks (matplotlib is not a dependency)."""

from __future__ import annotations


def plot_loader_calls(series: dict[str, list[int]], path: str, *, title: str) -> bool:
    """Grouped bars of loader calls per second, one colour per contender; True if drawn."""
    try:
        import matplotlib
    except ImportError:
        print(
            f"\n--plot {path}: matplotlib is not installed; `pip install matplotlib` to draw "
            "the chart (skipped; the ASCII chart above has the same numbers)"
        )
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = max((len(counts) for counts in series.values()), default=0)
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    for i, (name, counts) in enumerate(series.items()):
        xs = [s + (i - (len(series) - 1) / 2) * width for s in range(len(counts))]
        ax.bar(xs, counts, width=width, label=name)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.8)
    ax.set_xticks(range(seconds), [f"{s}-{s + 1}" for s in range(seconds)])
    ax.set_xlabel("second of the run")
    ax.set_ylabel("loader calls (log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"\nwrote {path}")
    return True
