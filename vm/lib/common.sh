# shellcheck shell=bash
# common.sh: what every vm/*.sh shares: logging, exit codes, the app dir, atomic writes,
# locks, the compose wrapper, a service's containers by compose labels, release.json
# access and the role lookups (docs/vm-contract.md). Sourced by the entry scripts, never
# run. SCRIPT_NAME/SCRIPT_DIR name the sourcing entry script.
# shellcheck disable=SC2034  # LOG_FILE, EX_USAGE and COMPOSE_TIMEOUT are read by the sourcing scripts
[[ "${BASH_SOURCE[0]}" != "$0" ]] || { echo "lib/common.sh is sourced by vm/*.sh, not run" >&2; exit 64; }

SCRIPT_NAME="$(basename -- "${BASH_SOURCE[1]}" .sh)"
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[1]}")" && pwd)"
LOG_FILE=""
EX_USAGE=64
# Set by use_app_dir: the app dir (/opt/APP) and APP, the compose project name.
APP_DIR="" APP=""
# Seconds each `compose` call may take.
COMPOSE_TIMEOUT=600
# The proxy's compose service when no release names it (install-tls.sh may run before one).
ONEVM_PROXY_SERVICE=onevm-proxy

ts() { date -u '+%Y-%m-%d %H:%M:%S'; }
iso_now() { date -u '+%Y-%m-%dT%H:%M:%SZ'; }

# log LEVEL MESSAGE...: "[YYYY-MM-DD HH:MM:SS] LEVEL: message" (UTC) to stderr and the log file.
log() {
  local level="$1" line
  shift
  line="[$(ts)] ${level}: $*"
  printf '%s\n' "$line" >&2
  if [[ -n "$LOG_FILE" ]]; then
    printf '%s\n' "$line" >>"$LOG_FILE" 2>/dev/null || true
  fi
}
die() {
  local code="$1"
  shift
  log ERROR "$*"
  exit "$code"
}
usage_error() {
  log ERROR "$*"
  printf 'Try: %s --help\n' "$SCRIPT_NAME.sh" >&2
  exit "$EX_USAGE"
}
# need_value "$@": the option in $1 must be followed by a value.
need_value() {
  [[ $# -ge 2 && -n "$2" ]] || usage_error "option $1 needs a value"
}

# common_option "$@": the options every entry script takes, at the end of its own parsing
# loop: --app-dir DIR (into APP_DIR_ARG) and -h/--help (the script's usage); any other is
# a usage error. Sets ARGS_USED, the arguments to shift.
APP_DIR_ARG="" ARGS_USED=0
common_option() {
  case "$1" in
    --app-dir) need_value "$@"; APP_DIR_ARG="$2"; ARGS_USED=2 ;;
    --app-dir=*) APP_DIR_ARG="${1#*=}"; ARGS_USED=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
}

# Default --app-dir: /opt/APP/bin/x.sh -> /opt/APP (also when bin -> tools/<hash>);
# /opt/APP/releases/ID/bin/x.sh -> /opt/APP; /opt/APP/tools/<hash>/x.sh -> /opt/APP.
default_app_dir() {
  local parent phys
  if [[ "$(basename -- "$SCRIPT_DIR")" == "bin" ]]; then
    parent="$(dirname -- "$SCRIPT_DIR")"
    if [[ "$(basename -- "$(dirname -- "$parent")")" == "releases" ]]; then
      dirname -- "$(dirname -- "$parent")"
    else
      printf '%s\n' "$parent"
    fi
    return 0
  fi
  phys="$(cd -P -- "$SCRIPT_DIR" && pwd)"
  if [[ "$(basename -- "$(dirname -- "$phys")")" == "tools" ]]; then
    dirname -- "$(dirname -- "$phys")"
    return 0
  fi
  return 1
}

# resolve_app_dir VALUE: prints the absolute app dir (VALUE, else derived from the script's place).
resolve_app_dir() {
  local dir="$1"
  if [[ -z "$dir" ]]; then
    dir="$(default_app_dir)" || usage_error "cannot derive the app dir from $SCRIPT_DIR: pass --app-dir /opt/APP"
  fi
  [[ "$dir" == /* ]] || usage_error "--app-dir must be an absolute path: $dir"
  printf '%s\n' "${dir%/}"
}

# use_app_dir VALUE: sets APP_DIR (VALUE or derived) and APP (its name, which must be a
# valid compose project name), and logs to APP_DIR/logs/<script>.log from now on.
use_app_dir() {
  APP_DIR="$(resolve_app_dir "$1")"
  setup_logging "$APP_DIR"
  APP="$(basename -- "$APP_DIR")"
  valid_app_name "$APP" || die 1 "app dir name '$APP' is not a valid compose project name"
}

# Compose project names: lowercase letters, digits, '-' and '_', starting with a letter or digit.
valid_app_name() { [[ "$1" =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]]; }

# The operator lock (lock.sh): while it exists activations are refused.
operator_lock_file() { printf '%s\n' "$APP_DIR/state/operator.lock"; }
# operator_lock_text: "NAME since TIME: MESSAGE" of the operator lock ("" when unlocked).
operator_lock_text() {
  local file
  file="$(operator_lock_file)"
  [[ -f "$file" ]] || return 0
  jq -r '"\(.by // "unknown") since \(.since // "?"): \(.message // "")"' "$file" 2>/dev/null || printf 'unreadable %s\n' "$file"
}
valid_release_id() { [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ && "$1" != *..* ]]; }

# setup_logging APP_DIR: also append to APP_DIR/logs/<script>.log when that dir exists.
setup_logging() {
  local dir="$1/logs" file
  [[ -d "$dir" ]] || return 0
  file="$dir/$SCRIPT_NAME.log"
  if [[ ! -e "$file" ]]; then
    : >>"$file" 2>/dev/null || return 0
    # Created by root (sudo): hand it to the app dir's owner, who writes it next time.
    if [[ "$EUID" -eq 0 ]]; then chown --reference="$1" -- "$file" 2>/dev/null || true; fi
  fi
  if [[ -w "$file" ]]; then LOG_FILE="$file"; fi
}

# atomic_write DEST MODE < content: temp file in DEST's dir, fsync, chmod, rename over DEST.
atomic_write() {
  local dest="$1" mode="$2" tmp
  tmp="$(mktemp -- "$(dirname -- "$dest")/.$(basename -- "$dest").tmp-XXXXXX")" || return 1
  if cat >"$tmp" && chmod "$mode" -- "$tmp" && sync -- "$tmp" && mv -T -- "$tmp" "$dest"; then
    return 0
  fi
  rm -f -- "$tmp"
  return 1
}

# atomic_symlink TARGET LINK: LINK -> TARGET via a temp link and rename (never missing, never dangling).
atomic_symlink() {
  local target="$1" link="$2" tmp
  tmp="$link.tmp-$$"
  rm -f -- "$tmp"
  ln -s -- "$target" "$tmp" && mv -T -- "$tmp" "$link"
}

# take_lock FD FILE WAIT_S HOLDER_INFO: flock FILE on FD (8 or 9), waiting at most WAIT_S
# seconds, naming the holder while waiting; exits 4 when still busy. Writes HOLDER_INFO
# into the file once held. Child processes inherit the FD, so an orphaned child of a
# killed script keeps the lock until it ends (nothing can run beside it).
take_lock() {
  local fd="$1" file="$2" wait_s="$3" info="$4" holder
  case "$fd" in
    8) exec 8<>"$file" || die 1 "cannot open lock file $file" ;;
    9) exec 9<>"$file" || die 1 "cannot open lock file $file" ;;
    *) die 1 "take_lock: unsupported fd $fd" ;;
  esac
  if [[ "$EUID" -eq 0 ]]; then chown --reference="$(dirname -- "$file")" -- "$file" 2>/dev/null || true; fi
  if ! flock -n "$fd"; then
    holder="$(lock_holder "$file")"
    log WARN "lock $file is held by: $holder; waiting up to ${wait_s}s"
    if ! flock -w "$wait_s" "$fd"; then
      holder="$(lock_holder "$file")"
      die 4 "lock $file still busy after ${wait_s}s, held by: $holder"
    fi
  fi
  printf '%s\n' "$info" >"$file"
}
lock_holder() {
  local info pid
  info="$(head -c 400 -- "$1" 2>/dev/null | tr '\n' ' ')"
  info="${info% }"
  [[ -n "$info" ]] || info="unknown"
  pid="$(sed -n 's/.*pid=\([0-9][0-9]*\).*/\1/p' <<<"$info")"
  if [[ -n "$pid" && ! -d "/proc/$pid" ]]; then
    info="$info (that process is gone; a child it started still holds the lock)"
  fi
  printf '%s\n' "$info"
}

# Temp files a script registers (TMP_FILES+=(path)); `trap remove_tmp_files EXIT` removes them.
TMP_FILES=()
remove_tmp_files() {
  local f
  for f in ${TMP_FILES[@]+"${TMP_FILES[@]}"}; do rm -f -- "$f"; done
}

# run_logged CMD...: run, copying its output to stderr and the log file; returns its status.
run_logged() {
  if [[ -n "$LOG_FILE" ]]; then
    # Compose's attached output (the migrate run) clears lines with terminal escapes, even
    # with --ansi never (2.26): strip them from the log.
    "$@" 2>&1 | sed -u 's/\x1b\[[0-9;]*[A-Za-z]//g' | tee -a -- "$LOG_FILE" >&2
  else
    "$@" >&2
  fi
}

# ---- releases ----------------------------------------------------------------------

release_dir() { printf '%s\n' "$APP_DIR/releases/$1"; }
installed() { [[ -n "$1" && -f "$APP_DIR/releases/$1/COMPLETE" && -f "$APP_DIR/releases/$1/compose.yaml" ]]; }

# current_release: the id current points to ("" when absent or not an installed release).
current_release() {
  local target id
  target="$(readlink -- "$APP_DIR/current" 2>/dev/null)" || return 0
  id="$(basename -- "$target")"
  if installed "$id"; then
    printf '%s\n' "$id"
  else
    log WARN "current points to '$target', which is not an installed release: ignoring it"
  fi
}

# current_dir: the current release's directory ("" when there is none).
current_dir() {
  local id
  id="$(current_release)"
  [[ -z "$id" ]] || release_dir "$id"
}

# rel_get DIR FILTER [JQ_ARGS...]: jq -r FILTER of DIR/release.json; prints nothing for
# null, a missing field or a missing/unreadable file.
rel_get() {
  local dir="$1" filter="$2"
  shift 2
  jq -r "$@" "($filter) // empty" "$dir/release.json" 2>/dev/null || true
}

# rel_role DIR ROLE: the compose service of ROLE (web|migrate|database|proxy) in the
# release in DIR; nothing when the release has no such role.
rel_role() {
  case "$2" in
    web | database | proxy) rel_get "$1" ".$2.service" ;;
    migrate) rel_get "$1" '.migrate | if type == "object" then .service else . end' ;;
    *) die 1 "rel_role: unknown role $2" ;;
  esac
}

# rel_setting DIR KEY DEFAULT: settings.KEY of the release in DIR, else DEFAULT.
rel_setting() {
  local v
  v="$(rel_get "$1" ".settings.$2")"
  printf '%s\n' "${v:-$3}"
}

# rel_services DIR: the release's services (release.json `services`, else the compose file's).
rel_services() {
  local dir="$1" list
  list="$(rel_get "$dir" '.services[]?')"
  if [[ -n "$list" ]]; then printf '%s\n' "$list"; else compose "$dir" config --services 2>/dev/null; fi
}

# ---- compose and containers --------------------------------------------------------

# compose DIR ARGS...: docker compose for the release in DIR (project APP, shared .env),
# at most COMPOSE_TIMEOUT seconds.
compose() {
  local dir="$1"
  shift
  timeout "$COMPOSE_TIMEOUT" docker compose -p "$APP" --project-directory "$dir" -f "$dir/compose.yaml" \
    --env-file "$APP_DIR/shared/.env" "$@"
}

# service_containers [--all] SERVICE: full ids of SERVICE's running containers of project
# APP (with --all the stopped ones too); one-off `run` containers are not the service's.
service_containers() {
  local all=()
  if [[ "$1" == --all ]]; then
    all=(-a)
    shift
  fi
  docker ps "${all[@]}" -q --no-trunc --filter "label=com.docker.compose.project=$APP" \
    --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.oneoff=False"
}

# running_container SERVICE: id of a running container of SERVICE ("" when none).
running_container() { service_containers "$1" | head -n 1; }

container_name() { docker inspect -f '{{.Name}}' "$1" | sed 's,^/,,'; }

# run_migrate DIR: the migrate role of the release in DIR, once, to its exit: `up -d
# --wait` of the services it depends_on (else the database role, else none), then `up
# --no-deps --exit-code-from M M`. Returns 0 (also without a migrate role), 1 when a
# dependency did not come up healthy, 2 when the migrate service failed.
run_migrate() {
  local dir="$1" m deps=()
  m="$(rel_role "$dir" migrate)"
  [[ -n "$m" ]] || return 0
  apply_image_lock "$dir" || log WARN "release $(basename -- "$dir") runs some images not pinned by its images.lock (above)"
  mapfile -t deps < <(compose "$dir" config --format json 2>/dev/null |
    jq -r --arg m "$m" '.services[$m].depends_on // {} | keys[]' 2>/dev/null)
  if ((${#deps[@]} == 0)); then
    mapfile -t deps < <(rel_role "$dir" database)
  fi
  if ((${#deps[@]} > 0)) && [[ -n "${deps[0]}" ]]; then
    log INFO "starting what $m needs: ${deps[*]}"
    run_logged compose "$dir" up -d --wait "${deps[@]}" || return 1
  fi
  log INFO "running $m once"
  run_logged compose "$dir" up --no-deps --no-log-prefix --exit-code-from "$m" "$m" || return 2
}

# apply_image_lock DIR: every service of DIR's images.lock (registry transport) runs its
# pinned image: the reference release.json names for it is tagged to the pinned image
# when it points elsewhere (another release tagged it, or a moved tag was pulled); a
# reference that pins a digest itself needs no tag. Returns 1 when a pinned image is
# not present (activate.sh pulls them first). No lock: nothing to do.
apply_image_lock() {
  local dir="$1" svc pinned ref want have rc=0
  [[ -f "$dir/images.lock" ]] || return 0
  while read -r svc pinned; do
    # shellcheck disable=SC2016  # $s is jq's
    ref="$(rel_get "$dir" '.images[$s]' --arg s "$svc")"
    [[ -n "$ref" && "$ref" != *@* ]] || continue
    if ! want="$(docker image inspect -f '{{.Id}}' "$pinned" 2>/dev/null)"; then
      log WARN "the pinned image of $svc is not present: $pinned"
      rc=1
      continue
    fi
    have="$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)"
    if [[ "$have" != "$want" ]]; then
      docker tag "$pinned" "$ref" || { rc=1; continue; }
      log INFO "$ref -> $pinned ($svc)"
    fi
  done < <(jq -r 'to_entries[] | "\(.key) \(.value)"' "$dir/images.lock" 2>/dev/null)
  return "$rc"
}

# up_release DIR [SERVICE...]: `up -d --remove-orphans` of the release in DIR (its
# images.lock applied first): of every service but the migrate role's (it runs once per
# activation or restore, to its exit, before: `up` would start it again), or of the
# SERVICEs given. With a web role, the services the web service does not lead to come up
# first, in a call of their own: compose recreates every service that depends_on one it
# recreates, so one call would recreate the web service (just handed over) and what sits
# in front of it whenever a service behind it changes.
up_release() {
  local dir="$1" m
  shift
  local services=("$@") behind=()
  apply_image_lock "$dir" || log WARN "release $(basename -- "$dir") runs some images not pinned by its images.lock (above)"
  if ((${#services[@]} == 0)); then
    m="$(rel_role "$dir" migrate)"
    mapfile -t services < <(compose "$dir" config --services 2>/dev/null | grep -vxF -e "${m:-}" || true)
  fi
  mapfile -t behind < <(services_behind_web "$dir" "${services[@]}")
  if ((${#behind[@]} > 0 && ${#behind[@]} < ${#services[@]})); then
    run_logged compose "$dir" up -d "${behind[@]}" || return
  fi
  run_logged compose "$dir" up -d --remove-orphans ${services[@]+"${services[@]}"}
}

# services_behind_web DIR SERVICE...: those of the SERVICEs that are neither the web role's
# service of the release in DIR nor depend on it (directly or not); none without a web role.
services_behind_web() {
  local dir="$1" web
  shift
  web="$(rel_role "$dir" web)"
  [[ -n "$web" ]] || return 0
  # shellcheck disable=SC2016  # jq program
  compose "$dir" config --format json 2>/dev/null | jq -r --arg web "$web" --args '
    (.services | with_entries(.value = ((.value.depends_on // {}) | keys))) as $deps
    | def leads_to_web($s; $seen):
        $s == $web or ([$deps[$s][]? | select(($seen | index(.)) == null)] | any(leads_to_web(.; $seen + [$s])));
      $ARGS.positional[] | select(leads_to_web(.; []) | not)' "$@"
}
