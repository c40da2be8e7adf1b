#!/usr/bin/env bash
# The files kube-apiserver's hardening flags read, written before kubeadm init/join:
# /etc/kubernetes/hardening/{admission,audit-policy,encryption}.yaml (0600 in a 0700 directory).
# Parameters: FIRST ADMISSION_CONFIG AUDIT_POLICY
# On the first control plane the encryption configuration is kept when present, else made with a
# fresh 32-byte secretbox key, and printed (a secret) as the last action; the other control planes
# read it from stdin. Idempotent: files are rewritten only when their content changes.
set -euo pipefail

DIR=/etc/kubernetes/hardening
install -d -m 0700 "$DIR"
install -d -m 0700 /var/log/kubernetes/audit
umask 077

write_private() {
  write_if_changed "$1" || true
  chmod 0600 "$1"
}

printf '%s' "$ADMISSION_CONFIG" | write_private "$DIR/admission.yaml"
printf '%s' "$AUDIT_POLICY" | write_private "$DIR/audit-policy.yaml"

if [[ $FIRST == true ]]; then
  if ! grep -q '^kind: EncryptionConfiguration' "$DIR/encryption.yaml" 2>/dev/null; then
    # secretbox (XSalsa20-Poly1305): the strong local provider of the Kubernetes encryption docs;
    # identity last, so Secrets written before encryption was on stay readable.
    key=$(head -c 32 /dev/urandom | base64)
    printf '%s\n' 'apiVersion: apiserver.config.k8s.io/v1' 'kind: EncryptionConfiguration' 'resources:' \
      '  - resources: [secrets]' '    providers:' '      - secretbox:' '          keys:' \
      '            - name: key1' "              secret: $key" '      - identity: {}' \
      | write_private "$DIR/encryption.yaml.new"
    mv "$DIR/encryption.yaml.new" "$DIR/encryption.yaml"
    log "encryption-at-rest key generated"
  fi
else
  configuration=$(cat)
  grep -q '^kind: EncryptionConfiguration' <<<"$configuration" || die "no encryption configuration on stdin"
  printf '%s\n' "$configuration" | write_private "$DIR/encryption.yaml"
fi
log "control-plane hardening files in $DIR"
if [[ $FIRST == true ]]; then
  cat "$DIR/encryption.yaml"
fi
