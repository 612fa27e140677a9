# shellcheck shell=bash
# images.sh: activate.sh's images phase (every image the release names is present: docker
# load from archives, else docker pull) and the no-op test of whether the running stack
# runs them. Sourced after common.sh and journal.sh, never run.
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

# ensure_images DIR: every image the release in DIR needs is present: `docker load` of the
# archives (DIR/images/*.tar, APP_DIR/images/*.tar) that hold a missing one, then `docker
# pull` of what is still missing. Finishes the run (exit 1, nothing changed) otherwise.
ensure_images() {
  local dir="$1" tar t0 img
  local images=() missing=() tags=()
  t0="$(date +%s%N)"
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

# stack_matches_release DIR: every service of DIR's compose file has a container (stopped
# ones count) that runs the image the file names.
stack_matches_release() {
  local dir="$1" want have
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
