# Shared by the scripts: make a virtualenv that holds exactly one lock's pins.
#
#   locked_venv DIR LOCK    -> DIR holds exactly LOCK's packages (made anew when LOCK changed)
#
# pip installs with --require-hashes and --no-deps: every package, dependencies included, is
# the one the lock names, with the hash the lock records, so two installs are the same. The
# lock's sha256 is kept in DIR/.lock-sha256; a venv made from another lock is made again
# rather than patched, so nothing a previous lock brought in lingers.

locked_venv() {
  local dir=$1 lock=$2 want have
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  have=$(cat "$dir/.lock-sha256" 2>/dev/null || true)
  if [ "$want" = "$have" ] && "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
    return 0
  fi
  echo "== creating $dir from $lock"
  rm -rf "$dir"
  if ! python3 -m venv "$dir" >/dev/null 2>&1; then
    rm -rf "$dir"
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "== installing python3-venv (apt-get)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$dir"
    else
      echo "python3 -m venv failed: install python3-venv (sudo apt-get install -y python3-venv)" >&2
      return 1
    fi
  fi
  # pip's notices (a newer pip exists, a mirror in the pip config) only matter on failure.
  if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
      --no-deps -r "$lock" 2>"$dir/pip-install.log"; then
    cat "$dir/pip-install.log" >&2
    return 1
  fi
  echo "$want" >"$dir/.lock-sha256"
}

# pip install --no-deps of this checkout (editable) or of a built wheel into DIR.
install_cacheplug() {
  local dir=$1
  shift
  if ! "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
      --no-build-isolation "$@" 2>"$dir/pip-install.log"; then
    cat "$dir/pip-install.log" >&2
    return 1
  fi
}
