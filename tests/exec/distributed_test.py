#!/usr/bin/env python3
"""One process per stage over c10d Gloo on loopback, started by torchrun.

1. GPipe, 1F1B-flush, PipeDream and XPipe for 20 mini-batches on 2 and 4
   ranks end with the weights of the single-process executor (same seed):
   compared byte for byte, and the largest difference is printed otherwise.
2. SIGKILL of one rank of a job started without torchrun (the ranks' own
   failure detection): every other rank exits non-zero within 60 s with one
   line naming the lost rank. Under torchrun: the job exits non-zero in 60 s,
   and Ctrl-C (SIGINT to torchrun) stops every rank.
3. SIGKILL of the whole torchrun job, then --resume: the final weights equal
   an uninterrupted run's.
Usage: distributed_test.py XPIPE TORCHRUN
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weights_file import max_diff  # noqa: E402

xpipe, torchrun = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAILED:", what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_args(schedule, stages, steps, extra=()):
    T = "1" if schedule == "pipedream" else "4"
    return ["train", "--model", "cnn", "--data", "synthetic", "--synthetic-samples", "4096", "--schedule",
            schedule, "--stages", str(stages), "--micro-batches", T, "--batch-size", "64", "--max-steps",
            str(steps), "--seed", "5", "--partition", "even", "--no-eval", *extra]


def workers(job):
    out = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def kill_job(job):
    """SIGKILL torchrun and its workers (each in a session of its own)."""
    pids = workers(job)
    for p in [job.pid, *pids]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    job.wait()
    for p in pids:  # reaped by init; wait until they are gone
        for _ in range(200):
            if not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().split()[2] == "Z":
                break
            time.sleep(0.05)


def launch(nproc, args, **kw):
    return subprocess.run([torchrun, "--no-python", "--nproc-per-node", str(nproc), "--master-port",
                           str(free_port()), xpipe, *args], capture_output=True, text=True, **kw)


# 1. Equality with the single-process executor.
for stages in (2, 4):
    for schedule in ("gpipe", "1f1b-flush", "pipedream", "xpipe"):
        args = train_args(schedule, stages, 20)
        one, dist = f"{tmp}/one.bin", f"{tmp}/dist.bin"
        subprocess.run([xpipe, *args, "--save-weights", one], check=True, capture_output=True)
        r = launch(stages, [*args, "--save-weights", dist])
        if r.returncode != 0:
            check(False, f"{schedule} on {stages} ranks exited {r.returncode}: {r.stderr[-2000:]}")
            continue
        same = open(one, "rb").read() == open(dist, "rb").read()
        check(same, f"{schedule} on {stages} ranks: weights differ, max abs diff {max_diff(one, dist)}")

# 2a. One rank killed, ranks started by hand: the others name it.
world, victim = 4, 2
port = free_port()
args = train_args("xpipe", world, 100000, ["--epochs", "50"])
procs = []
for rank in range(world):
    env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    procs.append(subprocess.Popen([xpipe, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True))
time.sleep(4)
check(all(p.poll() is None for p in procs), "the job ended before the kill; nothing tested")
procs[victim].kill()
killed_at = time.time()
for rank, p in enumerate(procs):
    if rank == victim:
        p.wait()
        continue
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        check(False, f"rank {rank} still running 60 s after rank {victim} was killed")
        continue
    lines = [l for l in err.splitlines() if l.strip()]
    check(p.returncode != 0, f"rank {rank} exited 0 after losing rank {victim}")
    check(len(lines) == 1 and f"lost rank {victim}" in lines[0],
          f"rank {rank} should print one line naming rank {victim}, printed: {err[-1500:]}")
print(f"ranks stopped {time.time() - killed_at:.1f} s after the kill")

# 2b. The same under torchrun: the job exits non-zero within 60 s.
job = subprocess.Popen([torchrun, "--no-python", "--nproc-per-node", "2", "--master-port", str(free_port()), xpipe,
                        *train_args("gpipe", 2, 100000, ["--epochs", "50"])], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
time.sleep(4)
ranks = {p: open(f"/proc/{p}/environ").read().split("\0") for p in workers(job)}
victims = [p for p, env in ranks.items() if "RANK=1" in env]
check(len(victims) == 1, f"expected one worker of rank 1, found {victims} among {list(ranks)}")
if victims:
    os.kill(victims[0], signal.SIGKILL)
    try:
        job.communicate(timeout=60)
        check(job.returncode != 0, "torchrun exited 0 after a worker was killed")
    except subprocess.TimeoutExpired:
        kill_job(job)
        check(False, "torchrun still running 60 s after a worker was killed")
else:
    kill_job(job)

# 2c. Ctrl-C on torchrun stops every rank.
job = subprocess.Popen([torchrun, "--no-python", "--nproc-per-node", "2", "--master-port", str(free_port()), xpipe,
                        *train_args("xpipe", 2, 100000, ["--epochs", "50"])], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
time.sleep(4)
ranks = workers(job)
check(len(ranks) == 2, f"expected 2 workers, found {ranks}")
job.send_signal(signal.SIGINT)
try:
    job.wait(timeout=30)
    time.sleep(0.5)
    alive = [p for p in ranks if os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z"]
    check(not alive, f"ranks {alive} still running after Ctrl-C on torchrun")
except subprocess.TimeoutExpired:
    kill_job(job)
    check(False, "torchrun still running 30 s after Ctrl-C")

# 3. SIGKILL the whole job, then --resume: identical to an uninterrupted run.
args = train_args("xpipe", 2, 48, ["--epochs", "2", "--checkpoint-every", "4"])
full, resumed, ckpt = f"{tmp}/full.bin", f"{tmp}/resumed.bin", f"{tmp}/job.ckpt"
r = launch(2, [*args, "--checkpoint", f"{tmp}/a.ckpt", "--save-weights", full])
check(r.returncode == 0, f"uninterrupted run failed: {r.stderr[-1500:]}")
job = subprocess.Popen([torchrun, "--no-python", "--nproc-per-node", "2", "--master-port", str(free_port()), xpipe,
                        *args, "--checkpoint", ckpt, "--save-weights", resumed], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
for _ in range(600):
    if os.path.exists(ckpt):
        break
    time.sleep(0.05)
time.sleep(0.5)
kill_job(job)
check(os.path.exists(ckpt), "no manifest was written before the kill")
check(not os.path.exists(resumed), "the job finished before it was killed; nothing tested")
r = launch(2, [*args, "--checkpoint", ckpt, "--save-weights", resumed, "--resume"])
check(r.returncode == 0, f"resumed run failed: {r.stderr[-1500:]}")
if r.returncode == 0:
    check(open(full, "rb").read() == open(resumed, "rb").read(),
          f"resumed weights differ, max abs diff {max_diff(full, resumed)}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
