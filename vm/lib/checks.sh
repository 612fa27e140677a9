# shellcheck shell=bash
# checks.sh: the web role's checks (release.json web.checks[]: {path, status, json,
# contains}), shared by health-check.sh (the gate, on the host port) and the hand-over
# (a new web container, on its own address). Sourced after common.sh, never run.
# shellcheck disable=SC2016  # jq programs sit in single quotes
[[ "${BASH_SOURCE[0]}" != "$0" ]] || { echo "lib/checks.sh is sourced by vm/*.sh, not run" >&2; exit 64; }

# web_check BASE CHECK_JSON [MAX_S]: GET BASE+path (at most MAX_S seconds, default 5) and
# compare the answer with the check: the status (default 200), each `json` field equal to
# the body's (compared as JSON values; nested objects as subsets), each `contains`
# substring in the body. Prints one JSON object {path, ok, answered, status,
# response_time_ms, detail}; returns 0 when the check passed.
web_check() {
  local base="$1" check="$2" max="${3:-5}" path out rc=0 detail tail result
  path="$(jq -r '.path // "/"' <<<"$check")"
  out="$(curl -sS --max-time "$max" -o - -w '\n%{http_code} %{time_total}' -- "$base$path" 2>/dev/null)" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    case "$rc" in
      7) detail="no answer (connection refused)" ;;
      28) detail="no answer (timed out after ${max}s)" ;;
      52) detail="no answer (empty reply)" ;;
      56) detail="no answer (connection reset)" ;;
      *) detail="no answer (curl exit $rc)" ;;
    esac
    jq -cn --arg path "$path" --arg d "$detail" \
      '{path: $path, ok: false, answered: false, status: null, response_time_ms: null, detail: $d}'
    return 1
  fi
  tail="${out##*$'\n'}"
  result="$(printf '%s' "${out%$'\n'*}" | jq -Rsc --argjson c "$check" --arg path "$path" \
    --arg code "${tail%% *}" --arg t "${tail#* }" '
    def subset($want; $have):
      if ($want | type) == "object"
      then ($have | type) == "object"
           and all($want | to_entries[]; . as $e | ($have | has($e.key)) and subset($e.value; $have[$e.key]))
      else $want == $have end;
    . as $body
    | ($code | tonumber) as $status
    | ($c.status // 200) as $want
    | ($c.json // {}) as $fields
    | (if ($fields | length) > 0 then (try ($body | fromjson) catch null) else null end) as $doc
    | [ (if $status != $want then "want status \($want)" else empty end),
        (if ($fields | length) > 0 and ($doc | type) != "object" then "body is not a JSON object"
         else ($fields | to_entries[]
               | select(. as $e | ($doc | has($e.key)) and subset($e.value; $doc[$e.key]) | not)
               | "json \(.key): got \($doc[.key] | tojson), want \(.value | tojson)")
         end),
        ($c.contains // [] | .[] | select(. as $s | $body | contains($s) | not) | "body lacks \(tojson)")
      ] as $problems
    | {path: $path, ok: ($problems | length == 0), answered: true, status: $status,
       response_time_ms: (($t | tonumber) * 1000 | round),
       detail: (if ($problems | length) == 0 then "HTTP \($status)"
                else "HTTP \($status): " + ($problems | join("; ")) + " (body: " + ($body[0:120] | gsub("\n"; " ")) + ")" end)}')"
  printf '%s\n' "$result"
  jq -e '.ok' >/dev/null <<<"$result"
}

# web_checks DIR BASE [MAX_S]: every check of the release in DIR's web role against BASE;
# prints a JSON array of web_check's objects; returns 0 when all passed (also when there
# are none).
web_checks() {
  local dir="$1" base="$2" max="${3:-5}" check result rc=0
  local checks=() results=()
  mapfile -t checks < <(rel_get "$dir" '.web.checks[]?' -c)
  for check in ${checks[@]+"${checks[@]}"}; do
    result="$(web_check "$base" "$check" "$max")" || rc=1
    results+=("$result")
  done
  printf '%s\n' ${results[@]+"${results[@]}"} | jq -cs '.'
  return "$rc"
}
