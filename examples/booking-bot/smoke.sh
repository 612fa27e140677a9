#!/usr/bin/env bash
# The booking bot's smoke checks against a running bot-api: /health body, the five metric
# families, booking success + one-active-booking rejection, client cancel, master
# cancel without a reason rejected, and the list endpoint (Redis-cached).
#
# Usage: examples/booking-bot/smoke.sh [--help] [--expect-release ID] [BASE_URL]
#   BASE_URL             default http://127.0.0.1:8080
#   --expect-release ID  also require GET /version to report ID
# Needs: curl, jq.
# Exit:  0 all checks passed, 1 a check failed, 2 bad usage or missing tool.
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

base=http://127.0.0.1:8080
expect_release=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --expect-release) [ $# -ge 2 ] || { usage >&2; exit 2; }; expect_release=$2; shift 2 ;;
    -*) log ERROR "unknown option: $1"; usage >&2; exit 2 ;;
    *) base=${1%/}; shift ;;
  esac
done
for tool in curl jq; do
  command -v "$tool" >/dev/null 2>&1 || { log ERROR "$tool is required"; exit 2; }
done

failures=0
pass() { log INFO "ok: $1"; }
fail() { log ERROR "FAILED: $1"; failures=$((failures + 1)); }

body_file=$(mktemp)
trap 'rm -f "$body_file"' EXIT
# req METHOD PATH [JSON] -> sets $code and $body
req() {
  local args=(-sS -o "$body_file" -w '%{http_code}' -X "$1" --max-time 10)
  if [ $# -ge 3 ]; then args+=(-H 'Content-Type: application/json' --data "$3"); fi
  code=$(curl "${args[@]}" "$base$2") || code=000
  body=$(cat "$body_file")
}

# 1. health: exactly the expected body
req GET /health
if [ "$code" = 200 ] && [ "$body" = '{"status":"ok","service":"bot-api"}' ]; then
  pass "/health -> $body"
else
  fail "/health -> $code $body"
fi

# 2. metrics: the five families, each with samples
req GET /metrics
for family in 'bot_api_service_health' 'bot_api_requests_total{' \
              'bot_api_request_latency_seconds_bucket{' \
              'bot_api_booking_outcomes_total{outcome=' 'bot_api_abuse_outcomes_total{outcome='; do
  if [ "$code" = 200 ] && grep -qF -- "$family" <<<"$body"; then pass "/metrics has $family"
  else fail "/metrics lacks $family"; fi
done
rejected_before=$(sed -n 's/^bot_api_booking_outcomes_total{outcome="rejected"} \([0-9.e+]*\)$/\1/p' <<<"$body")

# 3. version
if [ -n "$expect_release" ]; then
  req GET /version
  got=$(jq -r '.release // empty' <<<"$body" 2>/dev/null || true)
  if [ "$code" = 200 ] && [ "$got" = "$expect_release" ]; then pass "/version -> $got"
  else fail "/version -> $code $body (expected $expect_release)"; fi
fi

# 4. bookings
client="smoke-$(date +%s)-$RANDOM"
slot=$(date -u -d '+1 day' '+%Y-%m-%dT%H:00:00+00:00')
req POST /bookings "{\"client_id\":\"$client\",\"slot\":\"$slot\"}"
id=$(jq -r '.id // empty' <<<"$body" 2>/dev/null || true)
if [ "$code" = 201 ] && [ -n "$id" ] && [ "$(jq -r .status <<<"$body")" = active ]; then
  pass "booking created (id $id)"
else
  fail "booking -> $code $body"
fi

req POST /bookings "{\"client_id\":\"$client\",\"slot\":\"$slot\"}"
if [ "$code" = 409 ]; then pass "second active booking rejected (409)"; else fail "second booking -> $code $body"; fi

req GET /metrics
rejected_after=$(sed -n 's/^bot_api_booking_outcomes_total{outcome="rejected"} \([0-9.e+]*\)$/\1/p' <<<"$body")
if [ -n "$rejected_before" ] && [ -n "$rejected_after" ] &&
   jq -en --argjson a "$rejected_after" --argjson b "$rejected_before" '$a > $b' >/dev/null; then
  pass "booking_outcomes{outcome=\"rejected\"} counted ($rejected_before -> $rejected_after)"
else
  fail "rejection not counted ($rejected_before -> $rejected_after)"
fi

if [ -n "$id" ]; then
  req POST "/bookings/$id/cancel" '{"actor":"master"}'
  if [ "$code" = 422 ]; then pass "master cancel without a reason rejected (422)"
  else fail "master cancel without reason -> $code $body"; fi

  req POST "/bookings/$id/cancel"
  if [ "$code" = 200 ] && [ "$(jq -r .status <<<"$body")" = cancelled ]; then pass "client cancel -> cancelled"
  else fail "cancel -> $code $body"; fi

  req GET "/bookings?client_id=$client"
  if [ "$code" = 200 ] && [ "$(jq -r "map(select(.id == $id)) | .[0].status" <<<"$body")" = cancelled ]; then
    pass "list shows the booking cancelled"
  else
    fail "list -> $code $body"
  fi

  req POST /bookings "{\"client_id\":\"$client\",\"slot\":\"$slot\"}"
  id2=$(jq -r '.id // empty' <<<"$body" 2>/dev/null || true)
  if [ "$code" = 201 ] && [ -n "$id2" ]; then
    pass "new booking after cancel accepted (id $id2)"
    req POST "/bookings/$id2/cancel" '{"actor":"master","reason":"smoke test cleanup"}'
    if [ "$code" = 200 ]; then pass "master cancel with a reason -> cancelled"
    else fail "master cancel with reason -> $code $body"; fi
  else
    fail "booking after cancel -> $code $body"
  fi
fi

if [ "$failures" -gt 0 ]; then
  log ERROR "$failures smoke check(s) failed against $base"
  exit 1
fi
log INFO "all smoke checks passed against $base"
