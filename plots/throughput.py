"""Simulated throughput per schedule for each model and cluster.

Usage: plots/throughput.py RESULTS_DIR OUT.png
Reads RESULTS_DIR/sim_<model>_<cluster>.json written by experiments/sim_models.sh.
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results, out):
    files = sorted(glob.glob(os.path.join(results, "sim_*.json")))
    if not files:
        sys.exit(f"{results}: no sim_*.json files (run experiments/sim_models.sh)")
    fig, axes = plt.subplots(1, len(files), figsize=(3.2 * len(files), 3.6), sharey=False)
    if len(files) == 1:
        axes = [axes]
    for ax, path in zip(axes, files):
        runs = json.load(open(path))
        names = [r["schedule"] for r in runs]
        rates = [r["samples_per_sec"] for r in runs]
        ax.bar(range(len(runs)), rates, color="tab:blue")
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_title(os.path.basename(path)[4:-5].replace("_", " "), fontsize=8)
        ax.set_ylabel("samples/s (simulated)", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
