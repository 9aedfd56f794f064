#!/usr/bin/env bash
# Checkpoints that cannot lie, and data that cannot be half there:
# resuming with another optimizer, batch size or seed is refused naming what
# differs; a flipped byte is refused as damage; the same run resumes; a
# truncated dataset cache is made again before training.
# Usage: checkpoint_test.sh XPIPE
set -uo pipefail
xpipe=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
run=(train --data synthetic --synthetic-samples 512 --stages 2 --micro-batches 2 --batch-size 32 --epochs 1
     --max-steps 4 --checkpoint "$tmp/ck" --checkpoint-every 2 --no-eval)
expect() {  # name, status, stderr words, args...
  local name=$1 want=$2 words=$3
  shift 3
  "$xpipe" "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -ne "$want" ] || { [ -n "$words" ] && ! grep -qF -- "$words" "$tmp/err"; } || { [ "$want" -ne 0 ] && [ "$(wc -l <"$tmp/err")" -ne 1 ]; }; then
    echo "FAIL $name: status $got (want $want)"; cat "$tmp/err"; fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}
"$xpipe" "${run[@]}" >/dev/null 2>&1 || { echo "FAIL: first run"; exit 1; }
cp "$tmp/ck" "$tmp/ck.good"
expect "other optimizer" 2 'optimizer: checkpoint "adam", this run "sgd"' "${run[@]}" --resume --optimizer sgd
expect "other batch size" 2 'batch_size: checkpoint 32, this run 64' "${run[@]/32/64}" --resume
expect "other seed" 2 'seed: checkpoint 1, this run 2' "${run[@]}" --resume --seed 2
expect "other partition" 2 'partition: checkpoint' "${run[@]}" --resume --partition 1,11
# A flipped byte at each of 15 places in the tensors' records (the zip
# archive's last bytes are its directory, some of whose fields no reader
# uses): each is refused as damage, by the archive's own CRC or by the
# tensors' checksums, never resumed.
size=$(stat -c %s "$tmp/ck.good")
for off in $(seq $((size / 17)) $((size / 17)) $((size * 15 / 17))); do
  cp "$tmp/ck.good" "$tmp/ck"
  python3 -c "import sys; p, o = sys.argv[1], int(sys.argv[2]); b = bytearray(open(p, 'rb').read()); b[o] ^= 0x40; open(p, 'wb').write(b)" "$tmp/ck" "$off"
  expect "flipped byte at $off" 2 "damaged" "${run[@]}" --resume
done
cp "$tmp/ck.good" "$tmp/ck"
expect "same run resumes" 0 "" "${run[@]}" --resume
# A truncated dataset cache is made again.
if [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
  export XDG_CACHE_HOME=$tmp/cache
  "$xpipe" train --stages 2 --max-steps 1 --epochs 1 --no-eval >/dev/null 2>&1
  f=$tmp/cache/xpipe/fashion-mnist/t10k-labels-idx1-ubyte
  full=$(stat -c %s "$f")
  truncate -s 5000 "$f"
  expect "truncated cache" 0 "" train --stages 2 --max-steps 1 --epochs 1 --no-eval
  [ "$(stat -c %s "$f")" -eq "$full" ] && pass=$((pass + 1)) || { echo "FAIL: cache not restored"; fail=$((fail + 1)); }
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
