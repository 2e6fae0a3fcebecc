# Shared by the scripts: Debian packages the tests and the demo need from outside Python.
#
#   install_packages WHY PACKAGE...   -> as root with apt-get: install them; otherwise print
#                                        "WHY: run 'sudo apt-get install ...' first", and fail
#   varnish_missing                   -> true unless varnishd and vmod_xkey are installed

install_packages() {
  local why=$1
  shift
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing $* (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "$why: run 'sudo apt-get install -y $*' first" >&2
    return 1
  fi
}

# Debian puts varnishd in /usr/sbin, off a plain user's PATH; vmod_xkey is varnish-modules'.
varnish_missing() {
  { ! command -v varnishd >/dev/null 2>&1 && [ ! -x /usr/sbin/varnishd ]; } \
    || ! ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1
}
