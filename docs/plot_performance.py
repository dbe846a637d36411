"""Plots the API benchmark's latency percentiles per operation.

    cargo bench -p e2e --bench api -- --storage disk
    cargo bench -p e2e --bench api -- --storage tmpfs
    python docs/plot_performance.py   # needs matplotlib

Reads target/bench/api-{disk,tmpfs}.json, writes docs/performance.png.
"""

import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

root = pathlib.Path(__file__).resolve().parent.parent
runs = []
for storage in ("disk", "tmpfs"):
    path = root / "target" / "bench" / f"api-{storage}.json"
    if path.exists():
        runs.append((storage, json.loads(path.read_text())))
if not runs:
    raise SystemExit("no target/bench/api-*.json: run the api benchmark first")

fig, axes = plt.subplots(1, len(runs), figsize=(7 * len(runs), 5), squeeze=False)
for ax, (storage, report) in zip(axes[0], runs):
    rows = [f for f in report["figures"] if f["connection"] == "kept-alive"]
    names = [f["operation"] for f in rows]
    xs = range(len(rows))
    width = 0.27
    for i, (key, label) in enumerate([("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")]):
        ax.bar([x + (i - 1) * width for x in xs], [f[key] for f in rows], width, label=label)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"kept-alive, SQLite on {storage}")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
fig.suptitle("Full gateway chain vs no-op chain (same 4 components), 1 client, 2 cores")
fig.tight_layout()
out = root / "docs" / "performance.png"
fig.savefig(out, dpi=110)
print(f"wrote {out}")
