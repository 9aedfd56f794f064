"""When does a Gloo message arrive if its sender goes on computing? Plain PyTorch, no xpipe.

Rank 1 posts isend of 256 KiB and computes (matmuls on one thread); rank 0 has posted the
matching irecv and waits. "one": one message, then 2.6 ms of compute; "burst": four messages
with 0.6 ms of compute after each (what a GPipe stage's backwards do); "sleep": one message,
then 2.6 ms asleep instead of computing. Prints, per repetition, how long after the (first)
send rank 0 had it. On this project's 2-core machine: anywhere from 0.14 to 7.3 ms while the
sender computes (results/gloo_delivery.txt), against 0.13 ms that a ping-pong fit predicts;
with the sender asleep, 0.2-0.6 ms. Why (gloo/transport/tcp/pair.cc): a send goes out at once
from the caller's thread only if the receiver's "receive ready" note has already been read by
the sender's I/O thread; else the sender posts "send ready" and its I/O thread writes the data
when the note comes, which needs a core that the sender's compute thread is holding.
Usage: OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 experiments/gloo_delivery.py
"""
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


for mode in ("one", "burst", "sleep"):
    for rep in range(10):
        dist.barrier()
        if rank == 1:
            when = time.perf_counter()
            works = []
            for _ in range(4 if mode == "burst" else 1):
                works.append(dist.isend(torch.ones(floats), 0))
                if mode != "sleep":
                    compute(0.6)
            if mode == "sleep":
                time.sleep(0.0026)
            else:
                compute(2.0 if mode == "one" else 0.0)
            for w in works:
                w.wait()
        else:
            bufs = [torch.empty(floats) for _ in range(4 if mode == "burst" else 1)]
            dist.irecv(bufs[0], 1).wait()
            when = time.perf_counter()
            for x in bufs[1:]:
                dist.irecv(x, 1).wait()
        times = [torch.zeros(1, dtype=torch.float64) for _ in range(2)]
        dist.all_gather(times, torch.tensor([when], dtype=torch.float64))
        if rank == 0:
            print(f"{mode:5} {rep}: first message at rank 0 {(times[0].item() - times[1].item()) * 1e3:.3f} ms "
                  f"after rank 1 sent it", flush=True)
dist.destroy_process_group()
