#!/bin/sh
# The secret files docker-compose.yml mounts under /run/secrets, each made once with random
# content: a file that exists is kept, so running this again changes no password and loses no key.
#   deploy/make-secrets.sh [DIR]                     DIR: $TRLGATE_SECRETS_DIR, else ./secrets
#   deploy/make-secrets.sh --rotate-codec-key [DIR]  a new payload key in front of codec_keys
# Put the SMTP relay's real password in DIR/smtp_password (Mailpit ignores it). Back DIR up with
# the database: without codec_keys the workflow histories cannot be read, and audit_key anchors
# the audit log.
set -eu
rotate=no
if [ "${1:-}" = "--rotate-codec-key" ]; then rotate=yes; shift; fi
dir="${1:-${TRLGATE_SECRETS_DIR:-./secrets}}"
mkdir -p "$dir"
# Only this host user may open the folder; the files in it stay readable by any user id because
# compose bind-mounts them as they are, and each container runs as its own unprivileged user.
chmod 700 "$dir"
umask 022

random() { head -c 32 /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_'; }
# A key id never repeats (the date and random hex): a payload names the key that sealed it.
codec_key() {
  printf 'k%s-%s=%s\n' "$(date -u +%Y%m%d)" "$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
}

if [ "$rotate" = yes ]; then
  [ -s "$dir/codec_keys" ] || { echo "no $dir/codec_keys to rotate" >&2; exit 1; }
  # The new key seals from the next start on; the old ones stay to open what they sealed.
  { codec_key; cat "$dir/codec_keys"; } > "$dir/codec_keys.new"
  mv "$dir/codec_keys.new" "$dir/codec_keys"
  echo "new active key $(head -n 1 "$dir/codec_keys" | cut -d= -f1); recreate the api and worker containers"
  exit 0
fi

for name in postgres_password temporal_db_password trlgate_db_password jwt_secret audit_key smtp_password grafana_admin_password; do
  [ -s "$dir/$name" ] || random > "$dir/$name"
done
[ -s "$dir/codec_keys" ] || codec_key > "$dir/codec_keys"
echo "secrets in $dir"
