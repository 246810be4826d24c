#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang in a build directory of their own and
# runs them.
#
#   scripts/fuzz.sh [--time SECONDS] [--build-dir DIR] [HARNESS...]   fuzz by hand (default 600 s each)
#   scripts/fuzz.sh --ci [--build-dir DIR]      what CI runs: replay, then a fixed number of runs
#                                               from a fixed seed (FUZZ_SEED, 1) per harness
#   scripts/fuzz.sh --replay [--build-dir DIR]  only replay tests/fuzz/regressions/
#
# HARNESS is http_request, request_body, mcp or policy (default: all). Each harness starts from its
# checked-in seeds (tests/fuzz/corpus/HARNESS) and grows a working corpus in the build directory.
# An input that crashes, leaks, trips a sanitizer or runs longer than FUZZ_TIMEOUT seconds fails
# the run and is saved under BUILD_DIR/artifacts/HARNESS/. Once it is fixed, keep it as a
# regression input: tests/fuzz/regressions/HARNESS/<what-it-was>, which every run replays.
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD

mode=long
seconds=600
build_dir=$source_dir/build-fuzz
harnesses=()
while (($#)); do
  case $1 in
    --ci) mode=ci ;;
    --replay) mode=replay ;;
    --time) seconds=$2; shift ;;
    --build-dir) build_dir=$2; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) harnesses+=("$1") ;;
  esac
  shift
done
# CI fuzzes the same inputs on every run: a fixed seed and number of runs (a few seconds to half
# a minute each here), with a time cap for slow machines. A failure there is then the commit's,
# reproducible with the same command, not a bug a luckier random run found in older code;
# open-ended fuzzing is the long mode's job.
[[ $mode == ci ]] && seconds=${FUZZ_SECONDS:-120}
ci_runs() {
  case $1 in
    http_request|mcp) echo 50000 ;;
    request_body) echo 100000 ;;
    policy) echo 4000 ;;
  esac
}
((${#harnesses[@]})) || harnesses=(http_request request_body mcp policy)
# An input that takes longer than this is a finding: a request must not pin a thread.
timeout_seconds=${FUZZ_TIMEOUT:-10}

# Largest input per harness: above the header limit for HTTP, room for deeply nested JSON.
max_len() {
  case $1 in
    http_request) echo 65536 ;;
    request_body|mcp) echo 262144 ;;
    policy) echo 16384 ;;
  esac
}

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (scripts/deps.sh installs it)" >&2; exit 1; }
started=$(date +%s)
# -O1 and line tables only: symbolized stacks for a fraction of the compile time of -O2 -g.
# CMAKE_ARGS may carry a compiler launcher (ccache); clang's warnings are not the point here.
CC=clang CXX=clang++ cmake -S "$source_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=Fuzz \
  -DCMAKE_C_FLAGS_FUZZ="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_FUZZ="-O1 -gline-tables-only" \
  ${CMAKE_ARGS:-} -DAIRLOCK_WERROR=OFF -DAIRLOCK_FUZZ=ON >/dev/null
cmake --build "$build_dir" --target airlock_fuzzers -j"$(nproc)"
echo "fuzz.sh: harnesses built in $(($(date +%s) - started)) s" >&2

status=0
for harness in "${harnesses[@]}"; do
  fuzzer=$build_dir/tests/fuzz/${harness}_fuzzer
  [[ -x $fuzzer ]] || { echo "fuzz.sh: no harness $harness" >&2; exit 2; }
  common=(-timeout="$timeout_seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024
          -max_len="$(max_len "$harness")" -dict="$source_dir/tests/fuzz/$harness.dict")

  regressions=("$source_dir/tests/fuzz/regressions/$harness"/*)
  if [[ -e ${regressions[0]} ]]; then
    echo "fuzz.sh: $harness: replaying ${#regressions[@]} regression inputs" >&2
    replay_failed=0
    for input in "${regressions[@]}"; do
      # One at a time under `timeout`: libFuzzer enforces -timeout only while fuzzing, not
      # when it runs inputs given as files.
      if ! timeout "$timeout_seconds" "$fuzzer" "${common[@]}" "$input" \
          >"$build_dir/$harness-replay.log" 2>&1; then
        tail -n 40 "$build_dir/$harness-replay.log" >&2
        echo "fuzz.sh: $harness: $(basename "$input") fails again or takes over" \
          "$timeout_seconds s (log: $build_dir/$harness-replay.log)" >&2
        replay_failed=1
        status=1
      fi
    done
    ((replay_failed == 0)) || continue
  fi
  [[ $mode == replay ]] && continue

  corpus=$build_dir/corpus/$harness
  artifacts=$build_dir/artifacts/$harness/
  mkdir -p "$corpus" "$artifacts"
  budget=(-max_total_time="$seconds")
  if [[ $mode == ci ]]; then
    budget+=(-seed="${FUZZ_SEED:-1}" -runs="$(ci_runs "$harness")")
    echo "fuzz.sh: $harness: $(ci_runs "$harness") runs from seed ${FUZZ_SEED:-1} (at most $seconds s)" >&2
  else
    echo "fuzz.sh: $harness: fuzzing for $seconds s" >&2
  fi
  if ! "$fuzzer" "${common[@]}" "${budget[@]}" -print_final_stats=1 \
      -artifact_prefix="$artifacts" "$corpus" "$source_dir/tests/fuzz/corpus/$harness" \
      >"$build_dir/$harness.log" 2>&1; then
    tail -n 60 "$build_dir/$harness.log" >&2
    echo "fuzz.sh: $harness: found a failing input (in $artifacts; log: $build_dir/$harness.log)" >&2
    status=1
    continue
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
    "$build_dir/$harness.log" | sed "s/^/fuzz.sh: $harness: /" >&2
done
exit $status
