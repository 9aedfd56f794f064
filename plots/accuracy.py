"""Test accuracy per epoch for each schedule of experiments/fashion_mnist.sh.

Usage: plots/accuracy.py RESULTS_DIR OUT.png
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results, out):
    files = sorted(glob.glob(os.path.join(results, "fashion_mnist_*.jsonl")))
    if not files:
        sys.exit(f"{results}: no fashion_mnist_*.jsonl logs (run experiments/fashion_mnist.sh)")
    fig, (acc, speed) = plt.subplots(1, 2, figsize=(9, 3.6))
    for path in files:
        name = os.path.basename(path)[len("fashion_mnist_"):-len(".jsonl")]
        epochs = [json.loads(l) for l in open(path) if '"event": "epoch"' in l or '"event":"epoch"' in l]
        acc.plot([e["epoch"] for e in epochs], [100 * e["test_accuracy"] for e in epochs], marker="o", label=name)
        speed.bar(name, sum(e["samples_per_sec"] for e in epochs) / len(epochs))
    acc.xaxis.get_major_locator().set_params(integer=True)
    acc.set_xlabel("epoch")
    acc.set_ylabel("test accuracy (%)")
    acc.legend(fontsize=8)
    speed.set_ylabel("samples/s (4 CPU stages)")
    speed.tick_params(axis="x", labelrotation=45, labelsize=8)
    fig.suptitle("CNN on Fashion-MNIST, 4 pipeline stages, same seed")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
