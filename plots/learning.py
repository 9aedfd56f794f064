"""Final test accuracy of every weight policy in each optimizer setting of
experiments/learning.sh: mean over seeds with one standard deviation, and
how many seeds stopped on a NaN loss.

Usage: plots/learning.py experiments/results/learning.json OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(path, out):
    rows = json.load(open(path))["rows"]
    settings, policies = [], []
    for r in rows:
        s = f"{r['optimizer']} lr {r['lr']:g}"
        if s not in settings:
            settings.append(s)
        if r["policy"] not in policies:
            policies.append(r["policy"])
    width = 0.85 / len(policies)
    fig, ax = plt.subplots(figsize=(12, 4.2))
    cmap = plt.get_cmap("tab20")
    for i, p in enumerate(policies):
        xs, ys, err = [], [], []
        for j, s in enumerate(settings):
            r = next(r for r in rows if r["policy"] == p and f"{r['optimizer']} lr {r['lr']:g}" == s)
            x = j + (i - (len(policies) - 1) / 2) * width
            if r["test_accuracy_mean"] is None:
                ax.text(x, 2, "NaN", rotation=90, ha="center", va="bottom", fontsize=7)
            else:
                xs.append(x)
                ys.append(r["test_accuracy_mean"])
                err.append(r["test_accuracy_sd"])
            if r["diverged"] and r["test_accuracy_mean"] is not None:
                ax.text(x, r["test_accuracy_mean"] + 2, f"{r['diverged']}x NaN", rotation=90, ha="center",
                        va="bottom", fontsize=6)
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=p, color=cmap(i % 20),
               hatch="//" if "xpipe" in p else None)
    ax.set_xticks(range(len(settings)))
    ax.set_xticklabels(settings)
    ax.set_ylabel("test accuracy after 200 mini-batches (%)")
    ax.set_ylim(0, 100)
    ax.set_title("CNN, Fashion-MNIST, 4 stages, seeds 1-3 (mean, 1 sd); NaN: seeds that stopped")
    ax.legend(ncol=5, fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
