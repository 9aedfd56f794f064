"""xpipe train --model gpt on a character-level text file the test writes.

1. XPipe on 2 stages (seed 1) lowers its loss: the first mini-batch starts near
   ln(vocabulary) (a uniform guess) and the last epoch ends well below it.
2. GPipe on 2 stages ends with the weights of GPipe on 1 stage (plain
   gradient accumulation): a pipeline cut changes nothing in synchronous
   training (the 1-stage run is the oracle).
3. Under torchrun, 2 ranks over Gloo end with the weights of the threaded run.
4. --profile-out writes a profile `xpipe sim` reads.
5. Bad input: one line naming the flag or file, exit 2.
Usage: gpt_test.py XPIPE [TORCHRUN]
"""
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weights_file import max_diff  # noqa: E402

xpipe = sys.argv[1]
torchrun = sys.argv[2] if len(sys.argv) > 2 else None
tmp = tempfile.mkdtemp()
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


rng = random.Random(7)
words = ("the pipeline sends every micro batch forward and its gradient back while the weights "
         "of each stage are predicted from the adam step").split()
text = "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))) + "." for _ in range(500))
path = f"{tmp}/text.txt"
open(path, "w").write(text)
vocab = len(set(text))

common = ["train", "--model", "gpt", "--data", f"text:{path}", "--seq-len", "32", "--gpt-layers", "2",
          "--gpt-hidden", "48", "--gpt-heads", "4", "--batch-size", "16", "--micro-batches", "2",
          "--lr", "3e-3", "--seed", "1"]


def run(args, **kw):
    return subprocess.run([xpipe, *args], capture_output=True, text=True, **kw)


# 1. The loss falls.
log = f"{tmp}/log.jsonl"
r = run([*common, "--schedule", "xpipe", "--stages", "2", "--epochs", "2", "--log", log])
check(r.returncode == 0, f"xpipe gpt run failed: {r.stderr}")
if r.returncode == 0:
    events = [json.loads(l) for l in open(log)]
    epochs = [e for e in events if e["event"] == "epoch"]
    segments = [e for e in events if e["event"] == "segment"]
    first = segments[0]["mini_batch_loss"][0]
    check(abs(first - math.log(vocab)) < 0.5, f"first loss {first:.3f}, uniform guess {math.log(vocab):.3f}")
    check(epochs[-1]["train_loss"] < 0.6 * math.log(vocab),
          f"train loss {epochs[-1]['train_loss']:.3f} not below 0.6 ln V = {0.6 * math.log(vocab):.3f}")
    check(epochs[1]["train_loss"] < epochs[0]["train_loss"], "loss did not fall between epochs")
    check(epochs[-1]["test_accuracy"] > 0.3, f"test accuracy {epochs[-1]['test_accuracy']}")
    print(f"gpt xpipe: vocabulary {vocab}, first loss {first:.3f}, epoch losses "
          f"{[round(e['train_loss'], 3) for e in epochs]}, test accuracy {epochs[-1]['test_accuracy']:.3f}")


# 2. GPipe on 2 stages = GPipe on 1 stage.
short = [*common, "--max-steps", "15", "--no-eval"]
one, two = f"{tmp}/one.bin", f"{tmp}/two.bin"
r1 = run([*short, "--schedule", "gpipe", "--stages", "1", "--save-weights", one])
r2 = run([*short, "--schedule", "gpipe", "--stages", "2", "--save-weights", two])
check(r1.returncode == 0 and r2.returncode == 0, f"gpipe runs failed: {r1.stderr} {r2.stderr}")
if r1.returncode == 0 and r2.returncode == 0:
    d = max_diff(one, two, same_stages=False)
    print(f"gpipe 2 stages vs 1 stage: max weight difference {d:.3g}")
    check(d < 1e-5, f"gpipe 2 stages vs 1 stage: max weight difference {d}")

# 3. Two ranks over Gloo = the threaded run.
if torchrun:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threaded, dist = f"{tmp}/threaded.bin", f"{tmp}/dist.bin"
    args = [*short, "--schedule", "xpipe", "--stages", "2"]
    r1 = run([*args, "--save-weights", threaded])
    r2 = subprocess.run([torchrun, "--no-python", "--nproc-per-node", "2", "--master-port", str(port), xpipe,
                         *args, "--save-weights", dist], capture_output=True, text=True, timeout=300)
    check(r1.returncode == 0 and r2.returncode == 0, f"xpipe gpt over gloo failed: {r2.stderr[-2000:]}")
    if r1.returncode == 0 and r2.returncode == 0:
        d = max_diff(threaded, dist)
        print(f"xpipe over 2 gloo ranks vs threads: max weight difference {d:.3g}")
        check(d < 1e-5, f"gpt over gloo vs threads: max weight difference {d}")

# 3b. Every schedule and weight policy runs it (a few mini-batches each).
for schedule in ("gpipe", "1f1b-flush", "interleaved-1f1b", "zb-h1", "stale", "pipedream", "pipedream-2bw",
                 "spectrain", "pipeoptim", "xpipe"):
    T = "1" if schedule in ("pipedream", "spectrain") else "2"
    stages = "1" if schedule == "interleaved-1f1b" else "2"  # 2 chunks of 2 blocks on one device
    extra = ["--chunks", "2"] if schedule == "interleaved-1f1b" else []
    r = run([*common[:common.index("--micro-batches")], "--micro-batches", T, *common[common.index("--lr"):],
             "--schedule", schedule, "--stages", stages, *extra, "--max-steps", "6", "--no-eval"])
    ok = r.returncode == 0 and "nan" not in r.stdout.lower()
    check(ok, f"{schedule}: rc {r.returncode}: {r.stderr.strip()[-300:]}")

# 4. A measured profile the simulator reads.
prof = f"{tmp}/gpt.json"
r = run([*common, "--stages", "2", "--max-steps", "2", "--no-eval", "--profile-out", prof])
check(r.returncode == 0, f"--profile-out failed: {r.stderr}")
if r.returncode == 0:
    p = json.load(open(prof))
    ops = [l["op"] for l in p["layers"]]
    check(ops[0].startswith("Embedding") and ops[-1].startswith("LmHead") and len(ops) == 4, f"layers {ops}")
    s = run(["sim", "--profile", prof, "--stages", "2", "--micro-batches", "2", "--schedules", "gpipe,xpipe",
             "--json"])
    check(s.returncode == 0 and len(json.loads(s.stdout)) == 2, f"sim on the gpt profile: {s.stderr}")

# 5. Bad input.
for args, words in (
    (["train", "--model", "gpt", "--data", "synthetic"], "--model: gpt trains on text"),
    (["train", "--model", "cnn", "--data", f"text:{path}"], "--model: text data"),
    (["train", "--model", "gpt", "--data", f"text:{tmp}/missing.txt"], f"{tmp}/missing.txt: cannot read"),
    (["train", "--model", "gpt", "--data", f"text:{path}", "--gpt-hidden", "48", "--gpt-heads", "5"],
     "--gpt-heads: 5 heads must divide the hidden size 48"),
    (["train", "--model", "gpt", "--data", f"text:{path}", "--seq-len", "40000"], "too short for two windows"),
):
    r = run(args)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2 and len(lines) == 1 and words in lines[0], f"{args[-2:]}: rc {r.returncode}, {r.stderr!r}")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("gpt test: all checks passed")
