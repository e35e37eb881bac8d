#!/usr/bin/env bash
# Installs VoiceChat on this machine; safe to run again (upgrades the app, keeps config, keys, data).
#   --prefix DIR   install under DIR instead of / (for containers and tests)
#   --no-systemd   do not install or enable the systemd unit
# Layout: app in <prefix>/opt/voicechat, config + keyring in <prefix>/etc/voicechat,
# data in <prefix>/var/lib/voicechat, unit in <prefix>/etc/systemd/system/voicechat.service.
set -euo pipefail

PREFIX=""
SYSTEMD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2%/}"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; PREFIX="${PREFIX%/}"; shift ;;
    --no-systemd) SYSTEMD=0; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

SRC="$(cd "$(dirname "$0")" && pwd)"
APP="$PREFIX/opt/voicechat"
ETC="$PREFIX/etc/voicechat"
DATA="$PREFIX/var/lib/voicechat"
UNIT_DIR="$PREFIX/etc/systemd/system"
SVC_USER=voicechat

say() { printf 'install.sh: %s\n' "$*"; }

# Node 20.17 or newer.
command -v node >/dev/null || { echo "install.sh: node is not installed (need Node.js >= 20.17)" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=17)?0:1)' \
  || { echo "install.sh: Node.js $(node -v) is too old (need >= 20.17)" >&2; exit 1; }

# Service user (only root can create one; without it everything stays owned by the caller).
OWNER="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
  if ! id "$SVC_USER" >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/voicechat --no-create-home --shell /usr/sbin/nologin "$SVC_USER"
    say "created system user $SVC_USER"
  fi
  OWNER="$SVC_USER"
fi

# Build from this checkout if needed, then install the app (production dependencies only).
if [ ! -f "$SRC/dist/commands/serve.js" ] || [ ! -f "$SRC/dist/web/index.html" ]; then
  say "building"
  (cd "$SRC" && npm run build >/dev/null)
fi
install -d -m 0755 "$APP"
STAGE="$(mktemp -d "$PREFIX/opt/.voicechat-stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
cp -a "$SRC/package.json" "$SRC/package-lock.json" "$SRC/README.md" "$SRC/bin" "$SRC/dist" "$SRC/systemd" "$STAGE/"
cp -a "$SRC/node_modules/." "$STAGE/node_modules/"
(cd "$STAGE" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
chmod -R go-w "$STAGE"
rm -rf "$APP.old"
[ -e "$APP/package.json" ] && mv "$APP" "$APP.old" && install -d -m 0755 "$APP"
rmdir "$APP" 2>/dev/null || true
mv "$STAGE" "$APP"
chmod 0755 "$APP"
rm -rf "$APP.old"
trap - EXIT
say "installed the app in $APP"

# Directories: config 0750 root:<user>, data 0700 <user>.
install -d -m 0750 "$ETC"
install -d -m 0700 "$DATA"
if [ "$(id -u)" -eq 0 ]; then chgrp "$SVC_USER" "$ETC"; chown "$SVC_USER:$SVC_USER" "$DATA"; fi

CLI=(node "$APP/bin/run.js")
if [ ! -f "$ETC/voicechat.env" ]; then
  say "no config yet: running voicechat init --yes"
  "${CLI[@]}" init --yes --config "$ETC/voicechat.env" --data-dir "$DATA"
fi
"${CLI[@]}" migrate up --config "$ETC/voicechat.env"

# The service reads the config; the keyring goes to it through LoadCredential= (root-only file) under
# systemd, or is owned by the service user otherwise.
if [ "$(id -u)" -eq 0 ]; then
  chown -R "$SVC_USER:$SVC_USER" "$DATA"
  chown "root:$SVC_USER" "$ETC/voicechat.env" && chmod 0640 "$ETC/voicechat.env"
  if [ "$SYSTEMD" -eq 1 ]; then chown root:root "$ETC/keys.json"; else chown "$SVC_USER:$SVC_USER" "$ETC/keys.json"; fi
  chmod 0600 "$ETC/keys.json"
fi

if [ "$SYSTEMD" -eq 1 ]; then
  install -d -m 0755 "$UNIT_DIR"
  sed -e "s#/opt/voicechat#$APP#g" -e "s#/etc/voicechat#$ETC#g" -e "s#/var/lib/voicechat#$DATA#g" \
    -e "s#/usr/bin/node#$(command -v node)#" "$SRC/systemd/voicechat.service" >"$UNIT_DIR/voicechat.service"
  chmod 0644 "$UNIT_DIR/voicechat.service"
  if [ -z "$PREFIX" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now voicechat.service
    say "voicechat.service enabled and started"
  else
    say "unit written to $UNIT_DIR/voicechat.service (systemd not running here: not enabled)"
  fi
fi
say "done. Create the first admin with: node $APP/bin/run.js users create NAME --admin --config $ETC/voicechat.env"
