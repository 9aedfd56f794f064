"""When does a Gloo message arrive if its sender goes on computing? Plain PyTorch, no xpipe.

Rank 1 posts isend of 256 KiB and computes (matmuls on one thread); rank 0 has posted the
matching irecv and waits. "one": one message, then 2.6 ms of compute; "burst": four messages
with 0.6 ms of compute after each (what a GPipe stage's backwards do); "sleep": one message,
then 2.6 ms asleep instead of computing; "one+yield" and "burst+yield": as "one" and "burst"
with os.sched_yield() after each isend, as xpipe's Gloo transport does (exec/transport.cc).
Prints, per repetition, how long after the (first) send rank 0 had it, then each mode's mean.
On this project's 2-core machine (results/gloo_delivery.txt, 20 repetitions each): 1.3 ms
on the mean for one message and 2.0 ms for a burst's first while the sender computes (up to
4.7 and 6.9 ms), 0.2 ms with the sender asleep, and 0.2 and 0.57 ms with the yield; a
ping-pong fit predicts 0.13 ms. Why (gloo/transport/tcp/pair.cc): a send goes out at once
from the caller's thread only if the receiver's "receive ready" note has already been read by
the sender's I/O thread; else the sender posts "send ready" and its I/O thread writes the data
when the note comes, which needs a core that the sender's compute thread is holding. And a
socket wakes the peer's I/O thread with a synchronous wake-up, which Linux puts on the waker's
core; a sender that goes on computing keeps it waiting there (sched_switch traces, issue 12).
Usage: OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 experiments/gloo_delivery.py
"""
import os
import time

import torch
import torch.distributed as dist

torch.set_num_threads(1)
dist.init_process_group("gloo")
rank = dist.get_rank()
floats = 65536  # 256 KiB of float32, an mlp micro-batch's activation in experiments/validate.sh
a, b = torch.randn(256, 256), torch.randn(256, 256)


def compute(ms):
    start = time.perf_counter()
    while (time.perf_counter() - start) * 1e3 < ms:
        torch.mm(a, b)


delays = {}
for mode in ("one", "burst", "sleep", "one+yield", "burst+yield"):
    for rep in range(20):
        dist.barrier()
        if rank == 1:
            when = time.perf_counter()
            works = []
            for _ in range(4 if mode.startswith("burst") else 1):
                works.append(dist.isend(torch.ones(floats), 0))
                if mode.endswith("+yield"):
                    os.sched_yield()
                if mode != "sleep":
                    compute(0.6)
            if mode == "sleep":
                time.sleep(0.0026)
            else:
                compute(2.0 if mode.startswith("one") else 0.0)
            for w in works:
                w.wait()
        else:
            bufs = [torch.empty(floats) for _ in range(4 if mode.startswith("burst") else 1)]
            dist.irecv(bufs[0], 1).wait()
            when = time.perf_counter()
            for x in bufs[1:]:
                dist.irecv(x, 1).wait()
        times = [torch.zeros(1, dtype=torch.float64) for _ in range(2)]
        dist.all_gather(times, torch.tensor([when], dtype=torch.float64))
        if rank == 0:
            delay_ms = (times[0].item() - times[1].item()) * 1e3
            delays.setdefault(mode, []).append(delay_ms)
            print(f"{mode:11} {rep}: first message at rank 0 {delay_ms:.3f} ms after rank 1 sent it", flush=True)
if rank == 0:
    for mode, d in delays.items():
        d = sorted(d)
        print(f"{mode:11} mean {sum(d) / len(d):.3f} ms, median {d[len(d) // 2]:.3f} ms, max {d[-1]:.3f} ms")
dist.destroy_process_group()
