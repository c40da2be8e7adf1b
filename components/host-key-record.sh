#!/usr/bin/env bash
# The SSH host key of WHAT as recorded in the stack (trust on first use): on creation the key just
# scanned (SCANNED_HOST_KEY); on every later run the key recorded before (pulumi-command hands it back
# as PULUMI_COMMAND_STDOUT), and a different scanned key is refused: nothing connects to WHAT with it.
set -euo pipefail

recorded=${PULUMI_COMMAND_STDOUT:-}
if [ -n "$recorded" ] && [ "$recorded" != "$SCANNED_HOST_KEY" ]; then
  fingerprint() { ssh-keygen -l -f /dev/stdin <<< "$1" 2> /dev/null | awk '{ print $2 }' || true; }
  cat >&2 <<MESSAGE
The SSH host key of ${WHAT} (${ENDPOINT}) has changed since this stack recorded it:
  recorded: ${recorded} ($(fingerprint "$recorded"))
  offered:  ${SCANNED_HOST_KEY} ($(fingerprint "$SCANNED_HOST_KEY"))
Nothing was run on ${WHAT}. If the machine was reinstalled or its host key replaced, check the offered
key's fingerprint on the machine itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then accept it
deliberately: ${ACCEPT}
Otherwise someone else may be answering at ${ENDPOINT}: do not accept it.
MESSAGE
  exit 1
fi
printf '%s\n' "$SCANNED_HOST_KEY"
