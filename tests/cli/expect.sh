# Sourced by the CLI scripts: expect CODE PATTERN -- command... runs the command (bounded by
# `timeout`, so a hang fails instead of stalling the suite) and checks its exit status, that stderr
# matches PATTERN (an extended regex; "" = anything) and that stderr is at most one line.
# Needs $T (a scratch directory); counts into $pass and $fail.
pass=0 fail=0
EXPECT_TIMEOUT=${EXPECT_TIMEOUT:-60}
expect() {
  local code=$1 pat=$2; shift 3
  timeout -k 5 "$EXPECT_TIMEOUT" "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  local lines
  lines=$(grep -c . "$T/err")
  local match=1
  if [ -n "$pat" ]; then grep -qE -- "$pat" "$T/err" || match=0; fi
  if [ "$rc" = "$code" ] && [ "$match" = 1 ] && [ "$lines" -le 1 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    local cmd="$*"
    echo "FAIL: '${cmd:0:300}' -> rc $rc (want $code; 124 = timed out), stderr:"; head -c 2000 "$T/err"
  fi
}
