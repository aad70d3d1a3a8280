#!/usr/bin/env bash
# The system packages the test suite uses, for `make test`: Java (the Spark tests) and Chromium
# (the displaCy browser test). When both are found nothing runs, so a second `make test` neither
# calls apt-get nor prints anything. Missing ones are installed with apt-get (Debian's
# openjdk-17-jre-headless and chromium) when this runs as root and apt-get exists; whatever is
# still missing afterwards gets one line: which tests will skip, and what to install. Never fails
# the build: those tests skip without the packages.
set -u

# The tests' own skip conditions (tests/spark/, tests/test_browser.py), on PATH.
have_java() { command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ]; }
have_chromium() {
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

packages=()
have_java || packages+=(openjdk-17-jre-headless)
have_chromium || packages+=(chromium)
[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing ${packages[*]} with apt-get, for the tests that need it (once)"
    # Slim Debian images lack the man folder that Java's post-install step writes into.
    mkdir -p /usr/share/man/man1
    log=$(mktemp)
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >>"$log" 2>&1; then
        rm -f "$log"
    else
        echo "apt-get could not install ${packages[*]}: its output is in $log"
    fi
fi

have_java || echo "The Spark tests will skip: no Java. Install Java 17+ (Debian: apt-get install" \
    "openjdk-17-jre-headless) or set JAVA_HOME."
have_chromium || echo "The browser test will skip: no Chromium. Install it (Debian: apt-get" \
    "install chromium)."
exit 0
