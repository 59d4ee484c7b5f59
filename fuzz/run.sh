#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 120) with the stable toolchain, which
# accepts the nightly flags cargo-fuzz needs under RUSTC_BOOTSTRAP=1 (see docs/fuzzing.md).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SANITIZER=address (default) or none; JOBS parallel jobs per target (default 1). New corpus entries
# go to fuzz/corpus/<target>/ (git ignores them: SHA-1 names); crashes to fuzz/artifacts/.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${1:-120}"
shift || true
sanitizer="${SANITIZER:-address}"
jobs="${JOBS:-1}"
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    nice -n 19 cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

nice -n 19 cargo fuzz build -s "$sanitizer" -a

# One job is libFuzzer's default; with more, each job logs to fuzz-<n>.log here.
parallel=()
if [ "$jobs" -gt 1 ]; then
    parallel=(-jobs="$jobs" -workers="$jobs")
fi

status=0
for target in "${targets[@]}"; do
    echo "== $target (${seconds}s, sanitizer $sanitizer)"
    mkdir -p "corpus/$target"
    dict=()
    if [ -f "dicts/$target.dict" ]; then
        dict=(-dict="dicts/$target.dict")
    fi
    if ! nice -n 19 cargo fuzz run -s "$sanitizer" -a "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        "${parallel[@]}" "${dict[@]}"; then
        echo "!! $target failed: see fuzz/artifacts/$target/"
        status=1
    fi
done
exit "$status"
