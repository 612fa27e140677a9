# shellcheck shell=bash
# images.sh: activate.sh's images phase (every image the release names is present: pinned
# ones pulled by digest from images.lock, docker load from archives, else docker pull) and
# the no-op test of whether the running stack runs them. Sourced after common.sh and
# journal.sh, never run.
[[ "${BASH_SOURCE[0]}" != "$0" ]] || { echo "lib/images.sh is sourced by vm/activate.sh, not run" >&2; exit 64; }

# release_images DIR: the images of the release in DIR (release.json `images`, and the
# compose file's), one per line.
release_images() {
  {
    rel_get "$1" '.images // {} | .[]? | strings'
    compose "$1" config --images 2>/dev/null || true
  } | sort -u | sed '/^$/d'
}

# missing_images IMAGE...: those not present locally.
missing_images() {
  local img
  for img in "$@"; do
    docker image inspect "$img" >/dev/null 2>&1 || printf '%s\n' "$img"
  done
}

# archive_tags TAR: the repo tags a `docker save` archive holds.
archive_tags() { tar -xOf "$1" manifest.json 2>/dev/null | jq -r '.[].RepoTags[]?' 2>/dev/null || true; }

# registry_of REF: the registry host a reference names (docker.io for Docker Hub's).
registry_of() {
  local first="${1%%/*}"
  if [[ "$1" == */* && ("$first" == *.* || "$first" == *:* || "$first" == localhost) ]]; then
    printf '%s\n' "$first"
  else
    printf 'docker.io\n'
  fi
}

# pull_failure PINNED OUTPUT: why `docker pull PINNED` failed, in words.
pull_failure() {
  local reg
  reg="$(registry_of "$1")"
  case "$2" in
    *"connection refused"* | *"no such host"* | *"i/o timeout"* | *"no route to host"* | *"network is unreachable"* | *"Client.Timeout"* | *"TLS handshake timeout"* | *"dial tcp"* | *"timed out"*)
      printf 'the registry %s could not be reached\n' "$reg" ;;
    *x509* | *"certificate signed by unknown authority"*)
      printf "the registry %s's TLS certificate is not trusted (onevm:registry.caCertificate)\n" "$reg" ;;
    *unauthorized* | *"authentication required"* | *denied* | *"no basic auth credentials"*)
      printf "the registry %s refused the VM's login (onevm:registry, onevm:registryPassword)\n" "$reg" ;;
    *"manifest unknown"* | *"not found"*)
      printf 'the registry %s has no image with that digest\n' "$reg" ;;
    *) printf 'docker pull failed: %s\n' "$(tail -n 1 <<<"$2")" ;;
  esac
}

# pull_pinned DIR: every image of DIR's images.lock is present: `docker pull` by digest of
# the missing ones (Docker checks the bytes against the digest), each then found under its
# digest. A failure finishes the run (exit 1) before anything changed, naming the cause;
# otherwise the compose file's references are tagged to the pinned images.
pull_pinned() {
  local dir="$1" svc pinned out
  local failed=()
  while read -r svc pinned; do
    docker image inspect "$pinned" >/dev/null 2>&1 && continue
    log INFO "docker pull $pinned ($svc)"
    if ! out="$(timeout "$COMPOSE_TIMEOUT" docker pull -q "$pinned" 2>&1)"; then
      log WARN "docker pull $pinned failed: $(tr '\n' ' ' <<<"$out")"
      failed+=("$svc: $(pull_failure "$pinned" "$out")")
    elif ! docker image inspect "$pinned" >/dev/null 2>&1; then
      failed+=("$svc: the pulled image does not have the pinned digest ${pinned#*@}")
    fi
  done < <(jq -r 'to_entries[] | "\(.key) \(.value)"' "$dir/images.lock" 2>/dev/null)
  if ((${#failed[@]} > 0)); then
    finish failed 1 "release $RELEASE refused before anything changed (${CURRENT:-no release} keeps running): pinned images not available: $(printf '%s; ' "${failed[@]}")"
  fi
  apply_image_lock "$dir" || finish failed 1 "release $RELEASE refused: its pinned images could not be tagged (above); nothing changed"
  log INFO "pinned images present: $(jq -r 'to_entries | map(.value) | join(" ")' "$dir/images.lock")"
}

# ensure_images DIR: every image the release in DIR needs is present: its images.lock's by
# digest (pull_pinned), then `docker load` of the archives (DIR/images/*.tar,
# APP_DIR/images/*.tar) that hold a missing one, then `docker pull` of what is still
# missing. Finishes the run (exit 1, nothing changed) otherwise.
ensure_images() {
  local dir="$1" tar t0 img
  local images=() missing=() tags=()
  t0="$(date +%s%N)"
  [[ ! -f "$dir/images.lock" ]] || pull_pinned "$dir"
  mapfile -t images < <(release_images "$dir")
  [[ "${#images[@]}" -gt 0 ]] || die 1 "cannot determine the images of release $RELEASE (release.json images / compose config --images)"
  mapfile -t missing < <(missing_images "${images[@]}")
  if [[ "${#missing[@]}" -eq 0 ]]; then
    log INFO "all ${#images[@]} images present: ${images[*]}"
    return 0
  fi
  log INFO "missing images: ${missing[*]}"
  for tar in "$dir"/images/*.tar "$APP_DIR"/images/*.tar; do
    [[ -f "$tar" ]] || continue
    mapfile -t tags < <(archive_tags "$tar")
    if ((${#tags[@]} > 0)) && printf '%s\n' "${missing[@]}" | grep -qxF -f <(printf '%s\n' "${tags[@]}"); then
      log INFO "docker load -i $tar"
      run_logged docker load -i "$tar" || die 1 "docker load -i $tar failed"
      mapfile -t missing < <(missing_images "${missing[@]}")
      ((${#missing[@]} > 0)) || break
    fi
  done
  for img in ${missing[@]+"${missing[@]}"}; do
    log INFO "docker pull $img"
    run_logged timeout "$COMPOSE_TIMEOUT" docker pull "$img" || log WARN "docker pull $img failed"
  done
  mapfile -t missing < <(missing_images "${images[@]}")
  if [[ "${#missing[@]}" -gt 0 ]]; then
    finish failed 1 "images not available (no archive, pull failed): ${missing[*]}; nothing changed"
  fi
  log INFO "all ${#images[@]} images present (load/pull took $((($(date +%s%N) - t0) / 1000000)) ms)"
}

# lock_applied DIR: each reference of DIR's images.lock points to its pinned image.
lock_applied() {
  local dir="$1" svc pinned ref
  [[ -f "$dir/images.lock" ]] || return 0
  while read -r svc pinned; do
    # shellcheck disable=SC2016  # $s is jq's
    ref="$(rel_get "$dir" '.images[$s]' --arg s "$svc")"
    [[ -n "$ref" && "$ref" != *@* ]] || continue
    [[ "$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null)" == "$(docker image inspect -f '{{.Id}}' "$pinned" 2>/dev/null || echo none)" ]] || return 1
  done < <(jq -r 'to_entries[] | "\(.key) \(.value)"' "$dir/images.lock" 2>/dev/null)
}

# stack_matches_release DIR: every service of DIR's compose file has a container (stopped
# ones count) that runs the image the file names (the one its images.lock pins).
stack_matches_release() {
  local dir="$1" want have
  if ! lock_applied "$dir"; then
    log INFO "an image reference of release $RELEASE points elsewhere than its images.lock pins"
    return 1
  fi
  want="$(compose "$dir" config --format json 2>/dev/null |
    jq -r '.services | to_entries[] | "\(.key) \(.value.image // "")"' 2>/dev/null | sort -u)"
  [[ -n "$want" ]] || return 1
  have="$(docker ps -a --filter "label=com.docker.compose.project=$APP" --filter "label=com.docker.compose.oneoff=False" \
    --format '{{.Label "com.docker.compose.service"}} {{.Image}}' 2>/dev/null | sort -u)"
  # Each wanted "service image" pair must be among the containers' pairs.
  if [[ -n "$(comm -23 <(printf '%s\n' "$want") <(printf '%s\n' "$have"))" ]]; then
    log INFO "the running stack differs from release $RELEASE's images: $(comm -23 <(printf '%s\n' "$want") <(printf '%s\n' "$have") | tr '\n' ' ')"
    return 1
  fi
}
