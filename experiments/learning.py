"""Where staleness hurts and what each weight policy recovers.

Every schedule's weight policy (GPipe, 1F1B-flush, stale 1F1B, PipeDream,
PipeDream-2BW, SpecTrain, PipeOptim, XPipe with fixed and with adaptive
prediction) over optimizers x learning rates x seeds, on the same model, data,
stages and partition: final test accuracy (mean and spread over seeds),
divergences (a NaN loss stops a run), and the mean prediction error per stage.

  python3 learning.py XPIPE OUT.json [--quick]

--quick (the CTest): the MLP on synthetic data, 2 policies, 1 seed, a few
steps, to show that the driver and its parsing work.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

XPIPE, OUT = sys.argv[1], sys.argv[2]
QUICK = "--quick" in sys.argv[3:]

POLICIES = [  # label, flags (PipeDream and SpecTrain run T = 1 by definition)
    ("gpipe", ["--schedule", "gpipe"]),
    ("1f1b-flush", ["--schedule", "1f1b-flush"]),
    ("stale", ["--schedule", "stale"]),
    ("pipedream", ["--schedule", "pipedream", "--micro-batches", "1"]),
    ("pipedream-2bw", ["--schedule", "pipedream-2bw"]),
    ("spectrain", ["--schedule", "spectrain", "--micro-batches", "1", "--prediction", "fixed"]),
    ("pipeoptim", ["--schedule", "pipeoptim", "--prediction", "fixed"]),
    ("xpipe fixed", ["--schedule", "xpipe", "--prediction", "fixed"]),
    ("xpipe adaptive", ["--schedule", "xpipe", "--prediction", "adaptive"]),
    # XPipe's paper: the other micro-batches reuse the bellwether's prediction.
    ("xpipe bellwether fixed", ["--schedule", "xpipe", "--prediction", "fixed", "--predict-from", "bellwether"]),
    ("xpipe bellwether adaptive", ["--schedule", "xpipe", "--prediction", "adaptive", "--predict-from", "bellwether"]),
]
SETTINGS = [  # optimizer, lr
    ("sgd", 0.05),
    ("momentum", 0.02),
    ("momentum", 0.1),
    ("adam", 0.001),
    ("adam", 0.003),
]
SEEDS = [1, 2, 3]
BASE = ["--model", "cnn", "--data", "fashion-mnist", "--stages", "4", "--batch-size", "64", "--epochs", "1",
        "--max-steps", "200"]
T = "4"
if QUICK:
    POLICIES = [POLICIES[2], POLICIES[8]]
    SETTINGS = [("sgd", 0.05)]
    SEEDS = [1]
    BASE = ["--model", "mlp", "--data", "synthetic", "--synthetic-samples", "1024", "--stages", "2",
            "--batch-size", "32", "--epochs", "1", "--max-steps", "16"]


def run(flags, seed):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "log.jsonl")
        micro = [] if "--micro-batches" in flags else ["--micro-batches", T]  # T = 1 policies say so
        r = subprocess.run([XPIPE, "train", *BASE, *micro, "--seed", str(seed), "--log", log, *flags],
                           capture_output=True, text=True)
        if r.returncode == 1 and "training stopped" in r.stderr:
            return {"diverged": True, "why": r.stderr.strip().split(": ")[-1]}
        if r.returncode != 0:
            raise SystemExit(f"xpipe train {' '.join(flags)} failed: {r.stderr.strip()}")
        events = list(map(json.loads, open(log)))
        epochs = [e for e in events if e.get("event") == "epoch"]
        curve = [a for e in events if e.get("event") == "segment" for a in e["mini_batch_accuracy"]]
        last = epochs[-1]
        return {"diverged": False, "test_accuracy": last["test_accuracy"],
                "train_accuracy": last["train_accuracy"], "prediction_error": last["prediction_error"],
                "stage_prediction_error": last["stage_prediction_error"],
                "stage_prediction_scale": last.get("stage_prediction_scale", []),
                "train_accuracy_per_mini_batch": curve}


rows = []
for optimizer, lr in SETTINGS:
    for label, flags in POLICIES:
        runs = [run([*flags, "--optimizer", optimizer, "--lr", str(lr)], s) for s in SEEDS]
        ok = [x for x in runs if not x["diverged"]]
        acc = [100 * x["test_accuracy"] for x in ok]
        errors = [x["stage_prediction_error"] for x in ok if x["prediction_error"] > 0]
        row = {
            "optimizer": optimizer, "lr": lr, "policy": label, "seeds": len(SEEDS),
            "diverged": len(runs) - len(ok),
            "test_accuracy_mean": statistics.mean(acc) if acc else None,
            "test_accuracy_sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "prediction_error_per_stage":
                [statistics.mean(e[k] for e in errors) for k in range(len(errors[0]))] if errors else [],
            "runs": runs,
        }
        rows.append(row)
        mean = f"{row['test_accuracy_mean']:6.2f}" if acc else "     -"
        pe = " ".join(f"{v:.2f}" for v in row["prediction_error_per_stage"]) or "-"
        print(f"{optimizer:8} {lr:<6} {label:25} test acc {mean} % +- {row['test_accuracy_sd']:4.2f}  "
              f"diverged {row['diverged']}/{len(SEEDS)}  pred err per stage {pe}", flush=True)

json.dump({"base": BASE, "seeds": SEEDS, "rows": rows}, open(OUT, "w"), indent=1)
print(f"{len(rows)} rows, {sum(len(r['runs']) for r in rows)} runs -> {OUT}")
