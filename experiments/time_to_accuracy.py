"""Time to accuracy: the learning study's curves joined with the simulated
time per mini-batch of each schedule on the shipped 4-GPU clusters.

  python3 time_to_accuracy.py XPIPE LEARNING.json OUT_PREFIX

For each run of experiments/learning.sh, the first mini-batch at which the
running mean of its training accuracy over the last 20 mini-batches reaches
the target; the mean over the seeds when every seed reaches it. Each schedule's
time per mini-batch comes from `xpipe sim` on a profile of the same CNN
measured on this machine's CPU (`xpipe train --profile-out`, micro-batches of
16), with the study's partition (1,2,1,8 layers per stage) and T, on
profiles/clusters/{pcie,nvlink}-4gpu.json: the compute is this CPU's, the
links are the clusters'. Writes OUT_PREFIX.txt and OUT_PREFIX.png.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

XPIPE, STUDY, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTERS = ["pcie-4gpu", "nvlink-4gpu"]
TARGETS = [0.60, 0.70]
WINDOW = 20
PARTITION = "1,2,1,8"
SCHEDULE = {  # study policy -> (schedule, T, what XPipe's passes after the bellwether predict from)
    "gpipe": ("gpipe", 4, "live"), "1f1b-flush": ("1f1b-flush", 4, "live"), "stale": ("stale", 4, "live"),
    "pipedream": ("pipedream", 1, "live"), "pipedream-2bw": ("pipedream-2bw", 4, "live"),
    "spectrain": ("spectrain", 1, "live"), "pipeoptim": ("pipeoptim", 4, "live"),
    "xpipe fixed": ("xpipe", 4, "live"), "xpipe adaptive": ("xpipe", 4, "live"),
    "xpipe bellwether fixed": ("xpipe", 4, "bellwether"), "xpipe bellwether adaptive": ("xpipe", 4, "bellwether"),
}

study = json.load(open(STUDY))
with tempfile.TemporaryDirectory() as tmp:
    profile = os.path.join(tmp, "cnn.json")
    subprocess.run([XPIPE, "train", "--model", "cnn", "--schedule", "gpipe", "--stages", "4", "--micro-batches",
                    "4", "--batch-size", "64", "--max-steps", "1", "--no-eval", "--profile-out", profile],
                   check=True, capture_output=True)
    ms = {}  # (cluster, schedule, T) -> simulated ms per mini-batch
    for cluster in CLUSTERS:
        for schedule, T, base in set(SCHEDULE.values()):
            r = subprocess.run([XPIPE, "sim", "--profile", profile, "--cluster",
                                os.path.join(HERE, "..", "profiles", "clusters", cluster + ".json"),
                                "--schedules", schedule, "--stages", "4", "--micro-batches", str(T),
                                "--batch-size", "64", "--partition", PARTITION, "--predict-from", base, "--json"],
                               check=True, capture_output=True, text=True)
            ms[(cluster, schedule, T, base)] = json.loads(r.stdout)[0]["mini_batch_ms"]


def steps_to(curve, target):
    for i in range(WINDOW, len(curve) + 1):
        if statistics.mean(curve[i - WINDOW:i]) >= target:
            return i
    return None


lines = [f"# time to a running-mean training accuracy (last {WINDOW} mini-batches); mean over seeds 1-3",
         "# simulated ms per mini-batch: " + ", ".join(
             f"{c} {s} T={t}" + (" (bellwether)" if b == "bellwether" else "") + f": {v:.2f}"
             for (c, s, t, b), v in sorted(ms.items()))]
table = {}  # (setting, policy, target, cluster) -> seconds or None
for row in study["rows"]:
    setting = f"{row['optimizer']} lr {row['lr']:g}"
    key = SCHEDULE[row["policy"]]
    for target in TARGETS:
        steps = [None if r["diverged"] else steps_to(r["train_accuracy_per_mini_batch"], target) for r in row["runs"]]
        reached = [s for s in steps if s is not None]
        cells = []
        for cluster in CLUSTERS:
            sec = statistics.mean(reached) * ms[(cluster, *key)] / 1000 if len(reached) == len(steps) else None
            table[(setting, row["policy"], target, cluster)] = sec
            cells.append(f"{cluster} {sec:7.2f} s" if sec is not None else f"{cluster}   -    ")
        mean_steps = f"{statistics.mean(reached):6.1f}" if len(reached) == len(steps) else "     -"
        lines.append(f"{setting:16} {row['policy']:25} target {target:.0%}: mini-batches {mean_steps} "
                     f"(reached by {len(reached)}/{len(steps)})  " + "  ".join(cells))
open(OUT + ".txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))

settings = list(dict.fromkeys(k[0] for k in table))
policies = list(SCHEDULE)
fig, axes = plt.subplots(1, len(settings), figsize=(15, 3.8), sharey=True)
cluster, target = CLUSTERS[0], TARGETS[1]
cmap = plt.get_cmap("tab20")
for ax, setting in zip(axes, settings):
    for i, p in enumerate(policies):
        sec = table.get((setting, p, target, cluster))
        if sec is None:
            ax.text(i, 0.2, "not reached", rotation=90, ha="center", va="bottom", fontsize=7)
        else:
            ax.bar(i, sec, color=cmap(i % 20), label=p)
    ax.set_title(setting, fontsize=9)
    ax.set_xticks(range(len(policies)))
    ax.set_xticklabels(policies, rotation=90, fontsize=7)
axes[0].set_ylabel(f"seconds to {target:.0%} running train accuracy\n({cluster}, simulated)")
fig.suptitle("Time to accuracy: mini-batches to the target (mean of 3 seeds) x simulated time per mini-batch; "
             "not reached: by at least one seed",
             fontsize=10)
fig.tight_layout()
fig.savefig(OUT + ".png", dpi=120)
