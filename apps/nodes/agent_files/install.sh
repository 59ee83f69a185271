#!/bin/sh
# powernode-agent @AGENT_VERSION@: install from the platform and enroll this node. Run as root:
#   curl -fsSL https://PLATFORM/agent/install.sh | POWERNODE_AGENT_TOKEN=pna_... sh -s -- --url https://PLATFORM
# (the platform's admin and the action system_agent_install_command print this line for an instance).
#
# 1. downloads the wheel @WHEEL_FILENAME@ from the platform and checks its sha256 (@WHEEL_SHA256@);
# 2. installs it into a virtualenv (default /opt/powernode-agent) made with --system-site-packages, so a
#    cryptography already on the node is used (pip fetches one only when missing or too old);
# 3. writes the token (0600) and agent.env (default /etc/powernode-agent), plus the platform CA when given;
# 4. installs the systemd unit the platform serves and enables it, when systemd runs; else says what to run.
#
# The token is read from POWERNODE_AGENT_TOKEN or --token-file, never from an argument (ps shows those), and is
# never sent anywhere by this script: the agent sends it in an Authorization header.
#
# Options (each also an environment variable):
#   --url URL              POWERNODE_URL               the platform URL the agent uses (required)
#   --token-file FILE      POWERNODE_AGENT_TOKEN_FILE  read the token from FILE instead of POWERNODE_AGENT_TOKEN
#   --ca-file FILE         POWERNODE_AGENT_PLATFORM_CA PEM bundle that verifies the platform's https certificate
#   --insecure-http        POWERNODE_AGENT_INSECURE_HTTP=1  allow a plain-http platform URL (lab overlays only)
#   --prefix DIR           POWERNODE_AGENT_PREFIX      virtualenv (default /opt/powernode-agent)
#   --config-dir DIR       POWERNODE_AGENT_CONFIG_DIR  token, agent.env, CA (default /etc/powernode-agent)
#   --python PYTHON        POWERNODE_AGENT_PYTHON      python >= 3.11 for the virtualenv (default python3)
#   --unit-dir DIR         POWERNODE_AGENT_UNIT_DIR    where the unit goes (default /etc/systemd/system)
#   --no-systemd           POWERNODE_AGENT_NO_SYSTEMD=1  install and configure, but do not install the unit
#   --offline              POWERNODE_AGENT_OFFLINE=1   pip may not reach an index (dependencies must be present)
set -eu

WHEEL=@WHEEL_FILENAME@
WHEEL_SHA256=@WHEEL_SHA256@

url=${POWERNODE_URL:-}
token_file=${POWERNODE_AGENT_TOKEN_FILE:-}
ca_file=${POWERNODE_AGENT_PLATFORM_CA:-}
insecure=${POWERNODE_AGENT_INSECURE_HTTP:-}
prefix=${POWERNODE_AGENT_PREFIX:-/opt/powernode-agent}
config_dir=${POWERNODE_AGENT_CONFIG_DIR:-/etc/powernode-agent}
python=${POWERNODE_AGENT_PYTHON:-python3}
unit_dir=${POWERNODE_AGENT_UNIT_DIR:-/etc/systemd/system}
no_systemd=${POWERNODE_AGENT_NO_SYSTEMD:-}
offline=${POWERNODE_AGENT_OFFLINE:-}

say() { echo "powernode-agent install: $*" >&2; }
die() { say "$*"; exit 1; }
need_value() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
    case $1 in
        --url) need_value "$@"; url=$2; shift 2 ;;
        --token-file) need_value "$@"; token_file=$2; shift 2 ;;
        --ca-file) need_value "$@"; ca_file=$2; shift 2 ;;
        --insecure-http) insecure=1; shift ;;
        --prefix) need_value "$@"; prefix=$2; shift 2 ;;
        --config-dir) need_value "$@"; config_dir=$2; shift 2 ;;
        --python) need_value "$@"; python=$2; shift 2 ;;
        --unit-dir) need_value "$@"; unit_dir=$2; shift 2 ;;
        --no-systemd) no_systemd=1; shift ;;
        --offline) offline=1; shift ;;
        --token) die "pass the token in POWERNODE_AGENT_TOKEN or --token-file, not as an argument (ps shows it)" ;;
        *) die "unknown option $1 (see the top of this script)" ;;
    esac
done

[ -n "$url" ] || die "no platform URL: pass --url https://PLATFORM"
url=${url%/}
token=${POWERNODE_AGENT_TOKEN:-}
if [ -n "$token_file" ]; then
    [ -r "$token_file" ] || die "cannot read the token file $token_file"
    token=$(cat "$token_file")
fi
case $token in
    pna_*) ;;
    "") die "no agent token: set POWERNODE_AGENT_TOKEN (from system_provision_instance or manage.py rotate_agent_token)" ;;
    *) die "POWERNODE_AGENT_TOKEN does not look like an agent token (pna_...)" ;;
esac
command -v curl >/dev/null || die "curl is missing"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$python is missing or older than 3.11 (pass --python)"

curl_ca=""
if [ -n "$ca_file" ]; then
    [ -r "$ca_file" ] || die "cannot read the platform CA $ca_file"
    curl_ca="--cacert $ca_file"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "downloading $url/agent/$WHEEL"
# shellcheck disable=SC2086 # curl_ca is empty or two words
curl -fsSLg $curl_ca -o "$work/$WHEEL" "$url/agent/$WHEEL"
echo "$WHEEL_SHA256  $work/$WHEEL" | sha256sum -c --quiet - || die "the wheel's sha256 is not $WHEEL_SHA256"

say "installing into $prefix"
upgrade=""
[ ! -x "$prefix/bin/powernode-agent" ] || upgrade=1
if [ ! -x "$prefix/bin/python" ]; then
    # the virtualenv sees the interpreter's packages: its pip when it has one (no ensurepip, seconds faster)
    # and a cryptography already on the node
    if "$python" -m pip --version >/dev/null 2>&1; then
        "$python" -m venv --system-site-packages --without-pip "$prefix"
    else
        "$python" -m venv --system-site-packages "$prefix"
    fi
fi
"$prefix/bin/python" -m pip --version >/dev/null 2>&1 || "$prefix/bin/python" -m ensurepip --default-pip >/dev/null
pip_index=""
[ -z "$offline" ] || pip_index="--no-index"
pip_install() {
    # shellcheck disable=SC2086 # pip_index is empty or one word
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$prefix/bin/python" -m pip install --quiet --no-warn-script-location \
        $pip_index "$@"
}
# the agent, and its dependencies only when missing or too old (a present cryptography is kept)
pip_install "$work/$WHEEL"
# run again on an installed node: replace the agent's files even when the version did not change
[ -z "$upgrade" ] || pip_install --force-reinstall --no-deps "$work/$WHEEL"
"$prefix/bin/powernode-agent" --help >/dev/null || die "the installed agent does not start"

say "writing $config_dir"
umask 077
mkdir -p "$config_dir"
chmod 0700 "$config_dir"
printf '%s\n' "$token" > "$config_dir/token.new" && mv "$config_dir/token.new" "$config_dir/token"
{
    echo "POWERNODE_URL=$url"
    echo "POWERNODE_AGENT_TOKEN_FILE=$config_dir/token"
    if [ -n "$ca_file" ]; then
        cp "$ca_file" "$config_dir/platform-ca.pem"
        echo "POWERNODE_AGENT_PLATFORM_CA=$config_dir/platform-ca.pem"
    fi
    [ -z "$insecure" ] || echo "POWERNODE_AGENT_INSECURE_HTTP=1"
} > "$config_dir/agent.env.new"
mv "$config_dir/agent.env.new" "$config_dir/agent.env"

if [ -n "$no_systemd" ] || [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null; then
    say "installed; no systemd here (or --no-systemd): start the agent with"
    say "  env \$(cat $config_dir/agent.env) $prefix/bin/powernode-agent run"
    exit 0
fi
umask 022
# shellcheck disable=SC2086
curl -fsSLg $curl_ca -o "$work/powernode-agent.service" "$url/agent/powernode-agent.service"
# the unit names the default places: point it at the ones chosen here
sed -e "s#/opt/powernode-agent#$prefix#g" -e "s#/etc/powernode-agent#$config_dir#g" \
    "$work/powernode-agent.service" > "$unit_dir/powernode-agent.service"
systemctl daemon-reload
systemctl enable powernode-agent.service
systemctl restart powernode-agent.service
say "enabled and started powernode-agent.service (journalctl -u powernode-agent -f)"
