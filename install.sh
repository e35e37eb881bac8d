#!/usr/bin/env bash
# Installs VoiceChat on this machine; safe to run again (upgrades the app, keeps config, keys, data).
#   --prefix DIR   install under DIR instead of / (for containers and tests)
#   --no-systemd   do not install or enable the systemd units
#   --uninstall    remove the service units and the app; never the config, keyring or data
# Layout: app in <prefix>/opt/voicechat, config + keyring in <prefix>/etc/voicechat,
# data in <prefix>/var/lib/voicechat, units in <prefix>/etc/systemd/system/ (voicechat.service,
# voicechat-backup.service + .timer: nightly backup into <data>/backups, 14 kept).
set -euo pipefail

PREFIX=""
SYSTEMD=1
UNINSTALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2%/}"; shift 2 ;;
    --prefix=*) PREFIX="${1#--prefix=}"; PREFIX="${PREFIX%/}"; shift ;;
    --no-systemd) SYSTEMD=0; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

SRC="$(cd "$(dirname "$0")" && pwd)"
APP="$PREFIX/opt/voicechat"
ETC="$PREFIX/etc/voicechat"
DATA="$PREFIX/var/lib/voicechat"
UNIT_DIR="$PREFIX/etc/systemd/system"
SVC_USER=voicechat
UNITS=(voicechat.service voicechat-backup.service voicechat-backup.timer)

say() { printf 'install.sh: %s\n' "$*"; }
systemd_here() { [ -z "$PREFIX" ] && [ -d /run/systemd/system ]; }

if [ "$UNINSTALL" -eq 1 ]; then
  if systemd_here; then
    systemctl disable --now voicechat-backup.timer voicechat.service 2>/dev/null || true
  fi
  for u in "${UNITS[@]}"; do rm -f "$UNIT_DIR/$u"; done
  if systemd_here; then systemctl daemon-reload; fi
  rm -rf "$APP" "$APP.old"
  say "removed the service units and $APP"
  say "kept: $ETC (config, keyring) and $DATA (database, uploads, backups); remove them yourself if you mean to"
  exit 0
fi

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

# Build from this checkout if needed (no build yet, no web client build, or sources newer than the
# build), then install the app (production dependencies only).
if [ ! -f "$SRC/dist/commands/serve.js" ] || [ ! -f "$SRC/dist/web/index.html" ] || { [ -d "$SRC/src" ] &&
  [ -n "$(find "$SRC/src" "$SRC/commands" "$SRC/migrations" -newer "$SRC/dist/commands/serve.js" -name '*.ts' -print -quit)" ]; }; then
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
install -d -m 0700 "$DATA/backups"
if [ "$(id -u)" -eq 0 ]; then chgrp "$SVC_USER" "$ETC"; chown "$SVC_USER:$SVC_USER" "$DATA"; fi

CLI=(node "$APP/bin/run.js")
UPGRADE=0
if [ ! -f "$ETC/voicechat.env" ]; then
  say "no config yet: running voicechat init --yes (fresh keyring with a staged next key per purpose)"
  "${CLI[@]}" init --yes --config "$ETC/voicechat.env" --data-dir "$DATA"
else
  UPGRADE=1
fi

# An upgrade: stop the old server, migrate, then start the new one (never the new code on an old schema).
WAS_ACTIVE=0
if [ "$UPGRADE" -eq 1 ] && systemd_here && systemctl is-active --quiet voicechat.service; then
  WAS_ACTIVE=1
  systemctl stop voicechat.service
  say "stopped voicechat.service for the upgrade"
fi
"${CLI[@]}" migrate up --config "$ETC/voicechat.env"

# Owners and modes. The keyring stays root's (root:root 0600): the service gets a copy through
# LoadCredential= ($CREDENTIALS_DIRECTORY), and only root's CLI (rotate-keys, keygen) writes it.
# The config is readable by the service group; data belongs to the service user.
if [ "$(id -u)" -eq 0 ]; then
  chown -R "$SVC_USER:$SVC_USER" "$DATA"
  chown "root:$SVC_USER" "$ETC/voicechat.env" && chmod 0640 "$ETC/voicechat.env"
  chown root:root "$ETC/keys.json"
  chmod 0600 "$ETC/keys.json"
fi

if [ "$SYSTEMD" -eq 1 ]; then
  install -d -m 0755 "$UNIT_DIR"
  for u in "${UNITS[@]}"; do
    sed -e "s#/opt/voicechat#$APP#g" -e "s#/etc/voicechat#$ETC#g" -e "s#/var/lib/voicechat#$DATA#g" \
      -e "s#/usr/bin/node#$(command -v node)#" "$SRC/systemd/$u" >"$UNIT_DIR/$u"
    chmod 0644 "$UNIT_DIR/$u"
  done
  if systemd_here; then
    systemctl daemon-reload
    systemctl enable --now voicechat.service voicechat-backup.timer
    say "voicechat.service and voicechat-backup.timer enabled and running"
    if [ "$WAS_ACTIVE" -eq 1 ]; then say "voicechat.service restarted on the new version"; fi
  else
    say "units written to $UNIT_DIR (systemd not running here: not enabled)"
  fi
fi
if [ "$UPGRADE" -eq 1 ]; then
  say "upgraded. Check the installation with: node $APP/bin/run.js audit --posture --config $ETC/voicechat.env"
else
  say "done. Create the first admin with: node $APP/bin/run.js users create NAME --admin --config $ETC/voicechat.env"
fi
