#!/usr/bin/env bash
# run.sh B SECONDS TARGET... — runs each libFuzzer target built in B/fuzz/
# for SECONDS (niced: the machine is shared), starting from its checked-in
# seed corpus tests/fuzz/corpus/NAME (NAME = the target without "fuzz_")
# and growing a working corpus in B/corpus/NAME. A finding stops the target
# and is saved as B/findings/NAME-crash-*; the script then exits non-zero.
# Prints one line per target: "fuzz NAME: N executions in S s, 0 findings",
# appended to B/fuzz.log (the figures of docs/reliability.md).
#
# Limits: a single allocation or the RSS beyond 2 GB is a finding (a loader
# must refuse a header claiming a huge size before allocating it); so is an
# input taking more than 10 s.
set -u
B=$1 SECONDS_EACH=$2
shift 2
cd "$(dirname "$0")/../.."
status=0
mkdir -p "$B/findings"
for t in "$@"; do
    name=${t#fuzz_}
    mkdir -p "$B/corpus/$name"
    dict=(); [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    log="$B/findings/$name.log"
    start=$(date +%s)
    nice -n 10 "$B/fuzz/$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$B/findings/$name-" "${dict[@]}" \
        "$B/corpus/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    findings=0
    if [ $rc -ne 0 ]; then
        findings=1 status=1
        grep -m3 -E "ERROR|runtime error|SUMMARY|internal error" "$log" >&2
        ls "$B/findings/$name-"* 2>/dev/null | grep -v '\.log$' >&2
    fi
    line="fuzz $name: ${execs:-?} executions in $(( $(date +%s) - start )) s, $findings findings"
    echo "$line"
    echo "$(date -u +%FT%TZ) $line" >>"$B/fuzz.log"
done
exit $status
