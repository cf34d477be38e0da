# Sourced by ./test.sh: the browser tests drive Debian's Chromium (/usr/bin/chromium) through
# Playwright, never a downloaded browser. A fresh machine has none: install Debian's package, and a
# Japanese font so pages and screenshots show Japanese text. Without them the browser tests skip
# locally and fail in CI.
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "IPAGothic\|IPAexGothic\|Noto Sans CJK"; then
  echo "installing Debian's chromium and a Japanese font for the browser tests ..."
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi
  ($sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null) \
    || echo "warning: could not install chromium; the browser tests will skip (and fail in CI)"
fi
