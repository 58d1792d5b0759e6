# Shared by the bench scripts that alternate a peer tool with zcopy: source it after
# setting $work (a scratch directory).

# One run of "$@": "WALL_MS CPU_MS" (CPU = user + system, all threads; `time` counts
# it in 10 ms steps, the wall clock is read to the microsecond).
run() {
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f '%U %S' -o "$work/time" "$@" > /dev/null 2>&1
  end=$(date +%s%N)
  awk -v ns="$((end - start))" '{ printf "%.1f %d\n", ns / 1e6, ($1 + $2) * 1000 }' "$work/time"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Column K of the "WALL CPU" lines in file F, as its median.
column_median() { cut -d' ' -f"$2" "$1" | median; }

ratio() { awk -v p="$1" -v o="$2" 'BEGIN { printf "%.2f", p / o }'; }
