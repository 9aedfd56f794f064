"""PyTorch pipelining's schedule files through xpipe and back.

Run with the pinned torch's Python (experiments/pytorch_schedules.sh does):
  python pytorch_schedules.py XPIPE PROFILE OUTDIR [--quick]

1. PyTorch's own schedules (GPipe, 1F1B, Interleaved1F1B, LoopedBFS,
   InterleavedZeroBubble, ZBVZeroBubble, DualPipeV; N = 2, 4, 8; several T),
   dumped compute-only and lowered (compute_comms) as PyTorch writes them,
   are checked by PyTorch's validator and by `xpipe schedule --check`
   (verdicts must agree), simulated by `xpipe sim --schedule-file`, written
   back by xpipe (`--format csv`, plain and `--lowered`), and loaded again by
   PyTorch's `_load_csv`: its validator accepts them and the compute order
   is PyTorch's own.
2. xpipe's synchronous schedules (gpipe, 1f1b-flush, interleaved-1f1b, zb-h1)
   as `--format csv` load and validate in PyTorch, compute-only and lowered;
   where PyTorch has the same schedule, the orders are compared.
3. Broken files (an action dropped, duplicated, moved before its forward,
   ...): PyTorch (validator, then its lowering and dry run for deadlocks) and
   xpipe must reach the same verdict.

Prints every failure and ends with "N passed, M failed"; exit status 1 if any
failed.
"""

import csv
import io
import json
import math
import os
import random
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import torch.distributed.pipelining.schedules as S  # noqa: E402

XPIPE, PROFILE, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
QUICK = "--quick" in sys.argv[4:]
os.makedirs(OUT, exist_ok=True)
passed, failed = 0, []


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failed.append(what)
        print("FAIL:", what, flush=True)


class Stage:
    """What the schedule classes read of a stage, without a process group."""

    def __init__(self, index, num_stages, group_size, rank):
        self.stage_index = index
        self.num_stages = num_stages
        self.group_size = group_size
        self.group_rank = rank
        self.is_first = index == 0
        self.is_last = index == num_stages - 1
        self.submod = torch.nn.Identity()


SINGLE = ["GPipe", "1F1B"]
LOOPED = ["Interleaved1F1B", "LoopedBFS", "InterleavedZeroBubble"]
VSHAPE = ["ZBVZeroBubble", "DualPipeV"]


def make(name, n, t):
    """The schedule object for rank 0 of n ranks, t micro-batches."""
    cls = getattr(S, "Schedule" + name)
    if name in SINGLE:
        return cls(Stage(0, n, n, 0), t), n
    stages = 2 * n
    if name in LOOPED:
        return cls([Stage(0, stages, n, 0), Stage(n, stages, n, 0)], t), stages
    return cls([Stage(0, stages, n, 0), Stage(stages - 1, stages, n, 0)], t), stages


def runtime(n, stages, t):
    """An empty PyTorch runtime schedule to _load_csv into."""
    mine = [Stage(i, stages, n, 0) for i in range(0, stages, n)]
    return S._PipelineScheduleRuntime(mine, t)


def compute_only(order):
    """The compute actions (PyTorch's GPipe and 1F1B orders carry REDUCE_GRAD,
    which its own compute-only lowering refuses)."""
    return {r: [a for a in v if a is not None and a.is_compute_op] for r, v in order.items()}


def write_rows(path, order):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        for rank in sorted(order):
            w.writerow(order[rank])


def compute_order(order):
    """Per rank, the compute passes in order (OVERLAP_F_B as its passes)."""
    out = {}
    for rank, actions in order.items():
        flat = []
        for a in actions:
            if a is None:
                continue
            for x in a.sub_actions or (a,):
                if x.computation_type in (S.F, S.B, S.I, S.W):
                    flat.append(str(x))
        out[rank] = flat
    return out


def pytorch_validator(order, n, stages, t):
    """PyTorch's own check of a compute schedule (_validate_schedule)."""
    try:
        S._validate_schedule(order, n, stages, t)
        return True
    except Exception:  # noqa: BLE001 (AssertionError, KeyError...)
        return False


def pytorch_runs(order, n, stages, t):
    """PyTorch's validator, then its lowering and dry run (which finds the
    deadlocks its validator does not look for). Its dry run knows no
    OVERLAP_F_B: given as its passes, in order, as its runtime runs them."""
    if not pytorch_validator(order, n, stages, t):
        return False
    mapping = S._validate_schedule(order, n, stages, t)
    flat = {r: [x for a in v for x in (a.sub_actions or (a,))] for r, v in compute_only(order).items()}
    try:
        lowered = S._add_send_recv(flat, stage_to_rank=lambda s: mapping[s], num_stages=stages)
        out = io.StringIO()
        save = sys.stdout
        sys.stdout = out  # its dry run prints the stuck grid
        try:
            S._simulate_comms_compute(lowered, lambda s: mapping[s], stages)
        finally:
            sys.stdout = save
        return True
    except Exception:  # noqa: BLE001
        return False


def holds_twice(order):
    """A pass named twice: PyTorch's validator counts sets, so it passes."""
    seen = set()
    for v in compute_only(order).values():
        for a in v:
            for x in a.sub_actions or (a,):
                if str(x) in seen:
                    return True
                seen.add(str(x))
    return False


def xpipe(*args):
    return subprocess.run([XPIPE, *args], capture_output=True, text=True)


def load_in_pytorch(path, n, stages, t, fmt):
    """PyTorch's _load_csv of a file; returns (ok, rt or error)."""
    try:
        rt = runtime(n, stages, t)
        rt._load_csv(path, format=fmt)
        return True, rt
    except Exception as e:  # noqa: BLE001
        return False, e


def xpipe_file_in_pytorch(args, path, n, stages, t, fmt, what):
    """xpipe writes a CSV (args), PyTorch's _load_csv(fmt) reads it: (ok, runtime)."""
    r = xpipe(*args)
    if r.returncode != 0:
        check(False, f"{what}: xpipe {' '.join(args[:3])}: {r.stderr.strip()[-200:]}")
        return False, None
    with open(path, "w") as f:
        f.write(r.stdout)
    ok, rt = load_in_pytorch(path, n, stages, t, fmt)
    check(ok, f"{what}: PyTorch _load_csv({fmt}) refuses xpipe's file: {str(rt)[:200]}")
    return ok, rt


ns = [2, 4] if QUICK else [2, 4, 8]
print(f"torch {torch.__version__}; xpipe {XPIPE}", flush=True)

# 1. PyTorch's schedules through xpipe and back.
cases = []
for name in SINGLE + LOOPED + VSHAPE:
    for n in ns:
        ts = [2 * n] if QUICK else sorted({n, 2 * n, 3 * n, n + 1})
        for t in ts:
            try:
                sch, stages = make(name, n, t)
            except Exception as e:  # noqa: BLE001: PyTorch refuses this (N, T)
                print(f"skip {name} N={n} T={t}: PyTorch refuses ({str(e).splitlines()[0][:80]})")
                continue
            cases.append((name, n, t, sch, stages))

sims = {}
refused = []
reordered = 0
for name, n, t, sch, stages in cases:
    tag = f"{name}_N{n}_T{t}"
    plain = os.path.join(OUT, tag + ".csv")
    lowered = os.path.join(OUT, tag + "_lowered.csv")
    order = sch.pipeline_order
    write_rows(plain, order)
    ok_pt = pytorch_validator(order, n, stages, t)
    if not ok_pt:  # PyTorch's own order is refused by its own validator: xpipe must refuse it too
        refused.append(tag)
        r = xpipe("schedule", "--check", plain)
        check(r.returncode == 2, f"{tag}: PyTorch refuses its own order, xpipe --check exit {r.returncode}")
        print(f"{tag}: PyTorch's validator refuses PyTorch's own order; {r.stderr.strip().splitlines()[-1]}")
        continue
    if name in SINGLE:
        rt = runtime(n, stages, t)
        rt._prepare_schedule_with_comms(compute_only(order))
        rt._dump_csv(lowered, format="compute_comms")
    else:
        sch._dump_csv(lowered, format="compute_comms")
    for path, what in [(plain, "compute-only"), (lowered, "lowered")]:
        r = xpipe("schedule", "--check", path)
        reordered += "SEND/RECV reordered" in r.stderr
        check(r.returncode == 0, f"{tag} {what}: PyTorch accepts, xpipe --check exit {r.returncode}: "
                                 f"{r.stderr.strip()[-200:]}")
        r = xpipe("sim", "--profile", PROFILE, "--schedule-file", path, "--batch-size", str(8 * t), "--json")
        ok = r.returncode == 0
        if ok:
            mb = json.loads(r.stdout)[0]["makespan_ms"]
            ok = math.isfinite(mb) and mb > 0
            sims[(tag, what)] = mb
        check(ok, f"{tag} {what}: xpipe sim --schedule-file: {r.stderr.strip()[-200:]}")
    # Lowered and compute-only simulate alike: xpipe re-derives the order.
    if (tag, "compute-only") in sims and (tag, "lowered") in sims:
        a, b = sims[(tag, "compute-only")], sims[(tag, "lowered")]
        check(abs(a - b) <= 1e-9 * max(a, b), f"{tag}: compute-only {a} ms, lowered {b} ms")
    # xpipe writes it back; PyTorch reads it and finds its own order.
    for flag, fmt in [([], "compute_only"), (["--lowered"], "compute_comms")]:
        back = os.path.join(OUT, f"{tag}_xpipe{'_lowered' if flag else ''}.csv")
        ok, rt = xpipe_file_in_pytorch(["schedule", "--schedule-file", plain, "--format", "csv", *flag], back, n,
                                       stages, t, fmt, tag)
        if ok:
            got = compute_order(rt.pipeline_order if fmt == "compute_only" else rt.pipeline_order_with_comms)
            check(got == compute_order(order), f"{tag}: xpipe's {fmt} file has another compute order")

# 2. xpipe's synchronous schedules in PyTorch.
SAME = {"gpipe": "GPipe", "1f1b-flush": "1F1B", "interleaved-1f1b": "Interleaved1F1B"}
same_order = {}
for kind in ["gpipe", "1f1b-flush", "interleaved-1f1b", "zb-h1"]:
    for n in ns:
        for t in ([2 * n] if QUICK else [n, 2 * n, 3 * n]):
            chunks = ["--chunks", "2"] if kind == "interleaved-1f1b" else []
            stages = 2 * n if chunks else n
            base = ["schedule", "--schedule", kind, "--stages", str(n), "--micro-batches", str(t),
                    "--mini-batches", "1", "--format", "csv", "--gpipe-backward-order", "forward", *chunks]
            for flag, fmt in [([], "compute_only"), (["--lowered"], "compute_comms")]:
                path = os.path.join(OUT, f"xpipe_{kind}_N{n}_T{t}{'_lowered' if flag else ''}.csv")
                ok, rt = xpipe_file_in_pytorch([*base, *flag], path, n, stages, t, fmt, f"xpipe {kind} N={n} T={t}")
                if ok and not flag and kind in SAME:
                    try:
                        ref, _ = make(SAME[kind], n, t)
                    except Exception:  # noqa: BLE001
                        continue
                    ours, theirs = compute_order(rt.pipeline_order), compute_order(ref.pipeline_order)
                    ranks = sum(ours[r] == theirs.get(r) for r in ours)
                    same_order.setdefault(kind, []).append((n, t, ranks == n, ranks))

# 3. Broken files: the same verdict from both.
rng = random.Random(1)
mutants = agree = twice = 0
disagreements = []
for name, n, t, sch, stages in cases[:: (3 if QUICK else 1)]:
    base = {r: [a for a in sch.pipeline_order[r] if a is not None] for r in sch.pipeline_order}
    for m in range(4 if QUICK else 12):
        order = {r: list(v) for r, v in base.items()}
        r = rng.choice(sorted(order))
        kind = m % 4
        i = rng.randrange(len(order[r]))
        if kind == 0:  # drop an action
            what = f"drop {order[r][i]}"
            del order[r][i]
        elif kind == 1:  # duplicate one
            what = f"duplicate {order[r][i]}"
            order[r].insert(i, order[r][i])
        elif kind == 2:  # move one to the front of its row
            what = f"move {order[r][i]} first"
            order[r].insert(0, order[r].pop(i))
        else:  # swap two of a row
            j = rng.randrange(len(order[r]))
            what = f"swap {order[r][i]} and {order[r][j]}"
            order[r][i], order[r][j] = order[r][j], order[r][i]
        path = os.path.join(OUT, f"mutant_{name}_N{n}_T{t}_{m}.csv")
        write_rows(path, order)
        pt = pytorch_runs(order, n, stages, t)
        x = xpipe("schedule", "--check", path, "--micro-batches", str(t)).returncode == 0
        mutants += 1
        if pt == x:
            agree += 1
        elif pt and not x and holds_twice(order):
            twice += 1
        else:
            disagreements.append(f"{name} N={n} T={t} {what}: PyTorch {'accepts' if pt else 'refuses'}, "
                                 f"xpipe {'accepts' if x else 'refuses'}")
for d in disagreements:
    print("DISAGREE:", d)
check(agree + twice == mutants, f"broken files: {mutants - agree - twice} of {mutants} verdicts differ")

print(f"PyTorch's schedules: {len(cases)} (schedule, N, T) cases, compute-only and lowered; "
      f"{len(refused)} refused by PyTorch's own validator: {' '.join(refused)}; "
      f"{reordered} lowered files needed their SEND/RECV reordered for xpipe's channels")
for kind, rows in same_order.items():
    print(f"xpipe {kind} vs PyTorch: same order in {sum(r[2] for r in rows)} of {len(rows)} (N, T); "
          f"ranks alike: {', '.join(f'N={r[0]} T={r[1]}: {r[3]}/{r[0]}' for r in rows)}")
print(f"broken files: {agree} of {mutants} verdicts agree; {twice} name a pass twice, which PyTorch's "
      "validator lets through (it counts sets) and xpipe refuses")
print(f"{passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
