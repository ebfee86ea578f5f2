# Step timing for .ci/run and scripts/test.sh (sourced, not run). `step NAME` ends the previous
# step and starts the next; `step_end` ends the current one; `steps_table` prints every step
# with its duration and status. Steps are appended to $CI_STEPS_FILE (one per line: seconds,
# status, name) so a script called from another reports into the same table.

# The first script to source this owns the file and prints the table; scripts it calls append.
if [ -z "${CI_STEPS_FILE:-}" ]; then
    CI_STEPS_FILE="$(mktemp "${TMPDIR:-/tmp}/steps.XXXXXX")"
    export CI_STEPS_FILE
    _steps_owner=1
else
    _steps_owner=0
fi
_step_name=""
_step_started=0

step_end() {
    local status="${1:-ok}"
    if [ -n "$_step_name" ]; then
        local took=$(($(date +%s) - _step_started))
        printf '%s\t%s\t%s\n' "$took" "$status" "$_step_name" >>"$CI_STEPS_FILE"
        echo "=== done in ${took}s: $_step_name"
    fi
    _step_name=""
}

step() {
    step_end
    _step_name="$*"
    _step_started=$(date +%s)
    echo
    echo "=== $* ($(date -u +%H:%M:%S))"
}

# Prints the table. Called from an EXIT trap: a step still open when the script exits failed.
steps_table() {
    local code=$?
    if [ -n "$_step_name" ]; then
        if [ "$code" = 0 ]; then step_end ok; else step_end FAILED; fi
    fi
    [ "$_steps_owner" = 1 ] && [ -s "$CI_STEPS_FILE" ] || return "$code"
    echo
    echo "| step | seconds | status |"
    echo "|---|---:|---|"
    local total=0 took status name
    while IFS=$'\t' read -r took status name; do
        echo "| $name | $took | $status |"
        total=$((total + took))
    done <"$CI_STEPS_FILE"
    echo "| **total** | **$total** ($((total / 60)) min $((total % 60)) s) | $([ "$code" = 0 ] && echo passed || echo "FAILED (exit $code)") |"
    rm -f "$CI_STEPS_FILE"
    return "$code"
}
