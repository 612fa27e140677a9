# shellcheck shell=bash
# backups.sh: the database role's backups, shared by backup.sh, restore.sh and
# offsite-copy.sh: the database container, finding a backup by name, verifying a dump.
# Sourced after common.sh, never run.
# shellcheck disable=SC2034  # VERIFY_DETAIL is read by the sourcing scripts
[[ "${BASH_SOURCE[0]}" != "$0" ]] || { echo "lib/backups.sh is sourced by vm/*.sh, not run" >&2; exit 64; }

# Seconds a pg_dump, pg_restore or a dump's verification may take.
PG_TIMEOUT="${PG_TIMEOUT:-1800}"

# database_container DIR CODE: the running container of the database role of the release
# in DIR; exits CODE when the release has none or its container does not run.
database_container() {
  local dir="$1" code="$2" svc id
  [[ -f "$dir/release.json" ]] || die "$code" "no release to take the database role from ($dir/release.json is missing)"
  svc="$(rel_role "$dir" database)"
  [[ -n "$svc" ]] || die "$code" "release $(basename -- "$dir") has no database role"
  id="$(running_container "$svc")"
  [[ -n "$id" ]] || die "$code" "the database service $svc of $APP has no running container"
  printf '%s\n' "$id"
}

# db_identity DIR: the database role's user and database name of the release in DIR, one
# a line; empty lines where it names none (the container's POSTGRES_USER/POSTGRES_DB apply).
db_identity() {
  jq -r '.database | (.user // ""), (.name // "")' "$1/release.json" 2>/dev/null || printf '\n\n'
}

# resolve_backup X [DIR]: the absolute path of an existing backup in DIR (default
# APP_DIR/backups) given as a path, file name or backup_id (.dump, else .dump.unverified).
resolve_backup() {
  local x="$1" dir="${2:-$APP_DIR/backups}" c
  for c in "$x" "$dir/$x" "$dir/$x.dump" "$dir/$x.dump.unverified"; do
    if [[ -f "$c" ]]; then
      printf '%s\n' "$(cd -P -- "$(dirname -- "$c")" && pwd)/$(basename -- "$c")"
      return 0
    fi
  done
  return 1
}

# verify_dump FILE CONTAINER: a PGDMP header, a non-empty `pg_restore --list`, and
# `pg_restore -f /dev/null` reads every data block (a truncated file fails), inside the
# database container. Sets VERIFY_DETAIL.
VERIFY_DETAIL=""
verify_dump() {
  local file="$1" db="$2" list entries
  VERIFY_DETAIL=""
  if [[ "$(head -c 5 -- "$file" 2>/dev/null)" != "PGDMP" ]]; then
    VERIFY_DETAIL="no PGDMP header (not a pg_dump custom-format archive)"
    return 1
  fi
  if ! list="$(timeout "$PG_TIMEOUT" docker exec -i "$db" pg_restore --list <"$file" 2>&1)"; then
    VERIFY_DETAIL="pg_restore --list failed: $(tail -n 2 <<<"$list" | tr '\n' ' ' | head -c 300)"
    return 1
  fi
  entries="$(grep -cv -e '^;' -e '^[[:space:]]*$' <<<"$list" || true)"
  if [[ "$entries" -lt 1 ]]; then
    VERIFY_DETAIL="pg_restore --list shows no entries"
    return 1
  fi
  # A truncated dump still has a readable table of contents: read every data block too.
  if ! list="$(timeout "$PG_TIMEOUT" docker exec -i "$db" pg_restore -f /dev/null <"$file" 2>&1)"; then
    VERIFY_DETAIL="pg_restore cannot read the data (truncated or corrupt): $(tail -n 2 <<<"$list" | tr '\n' ' ' | head -c 300)"
    return 1
  fi
  VERIFY_DETAIL="$entries archive entries"
  return 0
}
