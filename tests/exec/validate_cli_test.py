#!/usr/bin/env python3
"""xpipe validate and xpipe profile --model end to end, small and quick.

validate's JSON names every requested schedule once, in order, with finite
positive predicted and measured times per mini-batch, an error that is the
relative difference of the two, and one finite busy figure pair per stage;
as threads of one process and as 2 Gloo ranks under torchrun. The accuracy
itself is measured by experiments/validate.sh, not here (timing on a shared
machine is not a unit test). profile --model writes a profile that `xpipe
sim` reads together with the cluster it measured.
Usage: validate_cli_test.py XPIPE TORCHRUN
"""
import json
import math
import os
import socket
import subprocess
import sys
import tempfile

xpipe, torchrun = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
failed = passed = 0
schedules = ["gpipe", "1f1b-flush", "pipedream", "xpipe"]
small = ["--model", "mlp", "--micro-batch-size", "16", "--mini-batches", "4", "--runs", "3",
         "--repeats", "3", "--link-idle-us", "100", "--schedules", ",".join(schedules)]


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAILED:", what)


def finite_positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def check_report(v, how):
    # The link's latency is the ping-pong's, or what a message took to arrive
    # while its sender computed less its bytes' time on the wire at the
    # fitted bandwidth, whichever is more (to the printed precision).
    check(finite_positive(v["delivery_us"]), f"{how}: delivery {v['delivery_us']}")
    check(finite_positive(v["delivery_bytes"]), f"{how}: delivery bytes {v['delivery_bytes']}")
    wire_us = v["delivery_bytes"] / (v["link_bandwidth_GBps"] * 1e3)
    # On Gloo ranks what the send call takes beyond the wire time is the
    # sender's per-message cost (billed to the pass that sends); in one
    # process a send is a hand-off and costs none.
    send_us = max(0.0, v["send_call_us"] - wire_us) if how == "gloo" else 0.0
    check(abs(v["send_us"] - send_us) < 0.01, f"{how}: send {v['send_us']}, expected {send_us}")
    expected = max(v["ping_pong_latency_us"], v["delivery_us"] - wire_us - v["send_us"])
    check(abs(v["link_latency_us"] - expected) < 0.01,
          f"{how}: latency {v['link_latency_us']}, expected max(ping-pong {v['ping_pong_latency_us']}, "
          f"delivery {v['delivery_us']} less wire {wire_us} and send {v['send_us']})")
    got = [s["schedule"] for s in v["schedules"]]
    check(got == schedules, f"{how}: schedules {got}")
    check(math.isfinite(v["mean_abs_error_pct"]), f"{how}: mean error")
    for s in v["schedules"]:
        name = f"{how} {s['schedule']}"
        check(finite_positive(s["predicted_ms"]) and finite_positive(s["measured_ms"]), f"{name}: times {s}")
        expected = 100 * (s["predicted_ms"] - s["measured_ms"]) / s["measured_ms"]
        check(abs(s["error_pct"] - expected) < 0.01 * abs(expected) + 0.05, f"{name}: error {s['error_pct']} vs {expected}")
        # Each round's prediction against its own run; the reported figures
        # are the round's whose error is the median (the upper one of an even count).
        errors = sorted(100 * (r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] for r in s["rounds"])
        median = errors[len(errors) // 2]
        check(abs(s["error_pct"] - median) < 0.01 * abs(median) + 0.05, f"{name}: error {s['error_pct']}, rounds' {errors}")
        check(any(abs(r["predicted_ms"] - s["predicted_ms"]) < 1e-6 and abs(r["measured_ms"] - s["measured_ms"]) < 1e-6
                  for r in s["rounds"]), f"{name}: figures of no round")
        check(len(s["stages"]) == 2, f"{name}: stages")
        for st in s["stages"]:
            check(finite_positive(st["predicted_busy_ms"]) and finite_positive(st["measured_busy_ms"]),
                  f"{name}: busy {st}")
        check(s["micro_batches"] == (1 if s["schedule"] == "pipedream" else 4), f"{name}: micro-batches")


# Threads of one process, with both timelines in one Perfetto file per schedule.
out = subprocess.run([xpipe, "validate", *small, "--json", "--trace", f"{tmp}/t.json"],
                     capture_output=True, text=True, timeout=300)
check(out.returncode == 0, f"validate: {out.stderr}")
if out.returncode == 0:
    check_report(json.loads(out.stdout), "threads")
    trace = json.load(open(f"{tmp}/t-xpipe.json"))
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name"}
    check({"predicted compute", "measured compute"} <= names, f"trace processes {names}")

# Two Gloo ranks under torchrun.
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
env = dict(os.environ, OMP_NUM_THREADS="1")
out = subprocess.run([torchrun, "--no-python", "--nproc-per-node", "2", "--master-port", str(port), "--",
                      xpipe, "validate", *small, "--json"], capture_output=True, text=True, timeout=300, env=env)
check(out.returncode == 0, f"validate under torchrun: {out.stderr[-2000:]}")
if out.returncode == 0:
    report = json.loads(out.stdout[out.stdout.index("{"):])
    check(report["mode"] == "gloo ranks", "mode")
    check_report(report, "gloo")

# The profiling step alone, then the simulator from its files.
out = subprocess.run([xpipe, "profile", "--model", "cnn", "--micro-batch-size", "8", "--repeats", "3",
                      "-o", f"{tmp}/p.json", "--cluster-out", f"{tmp}/c.json"], capture_output=True, text=True)
check(out.returncode == 0, f"profile --model: {out.stderr}")
if out.returncode == 0:
    p = json.load(open(f"{tmp}/p.json"))
    check(p["batch_size"] == 8 and len(p["layers"]) == 12 and sum(p["partition"]) == 12, "profile shape")
    check(all(l["forward_ms"] > 0 for l in p["layers"]), "forward times")
    check(all(("update_ms" in l) == (l["parameter_bytes"] > 0) for l in p["layers"]), "update times where weights")
    sim = subprocess.run([xpipe, "sim", "--profile", f"{tmp}/p.json", "--cluster", f"{tmp}/c.json",
                          "--stages", "2", "--micro-batches", "4", "--batch-size", "32", "--json"],
                         capture_output=True, text=True)
    check(sim.returncode == 0, f"sim from the measured files: {sim.stderr}")

# Bad input: one line, exit 2, before anything is profiled.
for args, words in [(["--micro-batch-size", "0"], "--micro-batch-size: must be between 1 and 65536"),
                    (["--micro-batch-size", "65536", "--micro-batches", "8"], "more than 65536 samples"),
                    (["--schedules", "xpipe,nope"], "--schedules: unknown schedule 'nope'"),
                    (["--link-idle-us", "nan"], "--link-idle-us"),
                    (["--stages", "99"], "--stages: must be between 1 and 64")]:
    out = subprocess.run([xpipe, "validate", *args], capture_output=True, text=True, timeout=60)
    check(out.returncode == 2 and words in out.stderr and out.stderr.count("\n") == 1, f"validate {args}: {out.stderr}")
for args, words in [(["--micro-batch-size", "-3"], "--micro-batch-size"), (["--model", "nope"], "--model")]:
    out = subprocess.run([xpipe, "profile", "--model", "cnn", *args], capture_output=True, text=True, timeout=60)
    check(out.returncode == 2 and words in out.stderr and out.stderr.count("\n") == 1, f"profile {args}: {out.stderr}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
