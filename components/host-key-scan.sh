#!/usr/bin/env bash
# Prints the SSH host key that HOST:PORT offers, as "TYPE BASE64", for trust on first use.
# ssh-keyscan does not authenticate: no credential is needed or sent. Of the key types a host offers,
# the first of ed25519, ECDSA, RSA: pulumi-command pins a key by offering its type as the only host key
# algorithm, and for RSA that is SHA-1 "ssh-rsa", which OpenSSH 8.8 and later refuse by default.
set -euo pipefail

command -v ssh-keyscan > /dev/null || die "ssh-keyscan (OpenSSH client) is needed to record the SSH host key of ${WHAT}"
for attempt in 1 2 3 4 5 6 7 8; do
  # -T: seconds to wait for the host; comment lines go to stderr.
  if offered=$(ssh-keyscan -T 15 -p "$PORT" -t ed25519,ecdsa,rsa "$HOST" 2> /dev/null) && [ -n "$offered" ]; then
    break
  fi
  [ "$attempt" -lt 8 ] || die "no SSH host key from ${WHAT} at ${HOST} port ${PORT} after 8 attempts"
  log "no SSH host key from ${WHAT} yet (attempt ${attempt}/8): retrying"
  sleep 5
done
key=""
for type in ssh-ed25519 ecdsa-sha2-nistp256 ecdsa-sha2-nistp384 ecdsa-sha2-nistp521 ssh-rsa; do
  key=$(awk -v type="$type" '$2 == type { print $2 " " $3; exit }' <<< "$offered")
  [ -z "$key" ] || break
done
[ -n "$key" ] || die "${WHAT} at ${HOST} port ${PORT} offers no ed25519, ECDSA or RSA host key"
printf '%s\n' "$key"
