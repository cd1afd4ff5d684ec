# Shared by scripts/*: package checks and the build. Source it, don't run it.

AQ_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages every command needs: the C and C++ build, GStreamer 1.22
# and Check.
AQ_BUILD_PACKAGES=(meson ninja-build pkg-config gcc g++ check
  libgstreamer1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)

# What scripts/test adds: PyGObject and the GStreamer typelib, so the Python
# example in docs/examples runs (without them its test is skipped).
AQ_TEST_PACKAGES=(python3-gi gir1.2-gstreamer-1.0)

# Whether a Debian package is installed: a name with ":arch" for that
# architecture; a bare name for this machine's own, or "all". A foreign
# architecture's copy (from scripts/cross) does not count.
aq_installed() {
  case "$1" in
    *:*) dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q "^install ok installed$" ;;
    *) dpkg-query -W -f='${Status} ${Architecture}\n' "$1" 2>/dev/null \
         | grep -Eq "^install ok installed ($(dpkg --print-architecture)|all)$" ;;
  esac
}

# Installs the named Debian packages that are missing. As root it runs
# apt-get; otherwise it prints the exact command and exits 1.
aq_require_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    aq_installed "$pkg" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "Installing missing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures (once) and builds the tree in $1 with extra meson options.
aq_build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$AQ_TOP" "$@"
  else
    meson configure "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir"
}

# What failed in meson test logs (testlog.json files; missing ones are
# skipped), a few lines per test: its name and result, then its Check
# assertions and sanitizer headlines (a passing test with a sanitizer
# report counts as failed). Callers print it last: CI shows a log's tail.
aq_failure_digest() {
  local json
  for json in "$@"; do
    [ -f "$json" ] || continue
    python3 - "$json" <<'EOF_PY'
import json, re, sys
sanitizer = re.compile(r'ERROR: \w+Sanitizer|runtime error:|WARNING: ThreadSanitizer|SUMMARY:')
check = re.compile(r':[EF]:|WATCHDOG')
for raw in open(sys.argv[1]):
    test = json.loads(raw)
    lines = (test.get("stdout") or "").splitlines()
    hits = [l for l in lines if check.search(l) or sanitizer.search(l)]
    passed = test["result"] in ("OK", "SKIP", "EXPECTEDFAIL")
    if passed and not any(sanitizer.search(l) for l in hits):
        continue
    print(f'  {test["name"]}: {test["result"]} (exit {test["returncode"]})')
    for l in hits[:6]:
        print("    " + l[:300])
EOF_PY
  done
}
