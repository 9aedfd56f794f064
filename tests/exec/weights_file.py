"""Reading `xpipe train --save-weights` files: a JSON header line, then raw float32."""
import json
import struct


def weights(path):
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        raw = f.read()
    return header, struct.unpack(f"{len(raw) // 4}f", raw)


def max_diff(a, b, same_stages=True):
    """Largest absolute difference between two weight files; inf when their layouts differ.
    same_stages=False compares the weights in order whatever stages hold them (a model split
    into different numbers of stages)."""
    ha, wa = weights(a)
    hb, wb = weights(b)
    if (same_stages and ha != hb) or len(wa) != len(wb):
        return float("inf")
    return max((abs(x - y) for x, y in zip(wa, wb)), default=0.0)
