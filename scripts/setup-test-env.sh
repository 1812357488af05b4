#!/usr/bin/env bash
# Installs the tools the report checks in tests/e2e need, and nothing else:
#
#   chromium          Debian's package (headless browser for tests/e2e/test_browser.py)
#   .ci/apt-packages.txt  other Debian libraries tests need (pango for WeasyPrint PDFs)
#   java (>= 11)      Debian's default-jre-headless, runs the W3C Nu HTML checker
#   node + npm        Debian's nodejs and npm, only when missing
#   node_modules/     vnu-jar, axe-core and markdownlint-cli2, pinned by package-lock.json
#   postgresql        Debian's package, for tests/sources (a private server per test session)
#   mariadb-server    Debian's package, likewise
#   systemd           Debian's package, only when systemd-analyze is missing: it checks
#                     the unit files in deploy/ (tests/deploy)
#   user eil-test     a system user the database servers run as when the tests run as
#                     root (PostgreSQL refuses to start as root); created only as root
#   playwright        the Python package (its wheel ships its own driver); it drives
#                     Debian's /usr/bin/chromium, so "playwright install" is never run
#                     and no browser is downloaded
#
# Idempotent: what is already there is left alone, so a second run changes
# nothing and takes a second or two. Safe as root (CI) and as a developer with
# sudo. Prints what it did. Run from anywhere:
#
#   bash scripts/setup-test-env.sh
#
# PYTHON names the interpreter to install playwright for (default: python3,
# so an activated virtual environment gets it).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
say() { printf 'setup-test-env: %s\n' "$*"; }
die() {
    printf 'setup-test-env: error: %s\n' "$*" >&2
    exit 1
}

# --- Debian packages ---------------------------------------------------------------

java_ok() {
    command -v java >/dev/null 2>&1 || return 1
    # "openjdk version "17.0.15" ..." or "java version "1.8.0_…"": 11 or newer is needed.
    local version major
    version="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
    major="${version%%.*}"
    [ "$major" = "1" ] && major="$(echo "$version" | cut -d. -f2)"
    [ -n "$major" ] && [ "$major" -ge 11 ] 2>/dev/null
}

packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium fonts-liberation)
java_ok || packages+=(default-jre-headless)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
# Database servers for tests/sources: the tests start their own, on private ports.
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || packages+=(postgresql)
{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } || packages+=(mariadb-server)
# systemd-analyze verifies the unit files of the deployment kit (deploy/*.service).
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
# Libraries other tests need (WeasyPrint's pango for the PDF format), one per line.
if [ -f .ci/apt-packages.txt ]; then
    while read -r name; do
        case "$name" in "" | "#"*) continue ;; esac
        dpkg -s "$name" >/dev/null 2>&1 || packages+=("$name")
    done <.ci/apt-packages.txt
fi

if [ "${#packages[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        die "missing ${packages[*]} and this is not a Debian/Ubuntu system (no apt-get); install them with your package manager"
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        die "missing ${packages[*]}: run this script as root or install sudo"
    fi
    # Package lists are fetched only when something is to be installed.
    say "apt-get update"
    "${as_root[@]}" apt-get update -qq
    say "apt-get install ${packages[*]}"
    # The database packages would start system-wide servers; the tests start their
    # own, so services are kept from starting during the install (policy-rc.d 101).
    policy=/usr/sbin/policy-rc.d
    added_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
        "${as_root[@]}" chmod 755 "$policy"
        added_policy=1
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    [ -n "$added_policy" ] && "${as_root[@]}" rm -f "$policy"
else
    say "chromium, java, node, npm, postgresql, mariadb-server and systemd already installed"
fi

# PostgreSQL will not run as root, so the tests run the servers as this user.
if [ "$(id -u)" -eq 0 ] && ! id eil-test >/dev/null 2>&1; then
    say "useradd eil-test (the user test database servers run as)"
    useradd --system --no-create-home --shell /usr/sbin/nologin eil-test
fi

command -v chromium >/dev/null 2>&1 || die "chromium is still missing after apt-get install"
java_ok || die "java 11 or newer is still missing after apt-get install"

# --- npm packages (pinned by package-lock.json) -----------------------------------

# npm ci always deletes node_modules; skip it when the lock file is what was
# installed last time and the tools are in place.
stamp=node_modules/.setup-test-env.lock-sha256
wanted="$(sha256sum package-lock.json package.json 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] &&
    [ -f node_modules/vnu-jar/build/dist/vnu.jar ] &&
    [ -f node_modules/axe-core/axe.min.js ] &&
    [ -e node_modules/.bin/markdownlint-cli2 ]; then
    say "node_modules up to date (vnu-jar, axe-core, markdownlint-cli2)"
else
    # --ignore-scripts: vnu-jar's postinstall would try to download a Java
    # runtime when it finds none; Debian's java is used instead.
    if [ -f package-lock.json ]; then
        say "npm ci"
        npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    else
        say "npm install (no package-lock.json)"
        npm install --ignore-scripts --no-audit --no-fund --loglevel=error
    fi
    echo "$wanted" >"$stamp"
fi

# --- Python browser driver ---------------------------------------------------------

if "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
    say "playwright (Python) already installed for $PYTHON"
else
    say "pip install playwright for $PYTHON"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check 'playwright>=1.49'
fi

say "ready: $(chromium --version 2>/dev/null | head -n1); java $(java -version 2>&1 | head -n1 | sed 's/.*version "\([^"]*\)".*/\1/'); node $(node --version)"
