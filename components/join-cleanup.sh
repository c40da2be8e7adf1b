#!/usr/bin/env bash
# Once every join of the set is done, on the first control plane: delete the bootstrap tokens this
# program made (the set's, init's) and kubeadm's kubeadm-certs Secret with its owner token.
# Parameters: TOKEN_DESCRIPTIONS (one a line). Idempotent: what is gone already is skipped.
# A join needs its token only until its kubelet's TLS bootstrap, and kubeadm join returns after waiting
# for that (phases/join/kubelet.go runKubeletWaitBootstrapPhase, @v1.36.4).
set -euo pipefail

wait_for_apiserver
# `kubeadm token list` prints one line a token: the full token, TTL, expiry, usages, description and
# groups, each cell padded by at least 3 spaces (a tabwriter with padding 3: cmd/kubeadm/app/cmd/token.go
# formatBootstrapToken and tokenTextPrinter, @v1.36.4). Only the ID goes to `token delete`, and only IDs
# that are listed: deleting a missing one is an error there (RunDeleteTokens).
listing=$(kubeadm token list)
mapfile -t ids < <(DESCRIPTIONS=$TOKEN_DESCRIPTIONS awk -F '   +' '
  BEGIN { n = split(ENVIRON["DESCRIPTIONS"], w, "\n"); for (i = 1; i <= n; i++) ours[w[i]] = 1 }
  length($1) == 23 && $1 ~ /^[a-z0-9]+[.][a-z0-9]+$/ && ($5 in ours) { print substr($1, 1, 6) }' <<<"$listing")
if ((${#ids[@]})); then
  kubeadm token delete "${ids[@]}" >&2
fi
admin_kubectl -n kube-system delete secret kubeadm-certs --ignore-not-found >&2
log "join credentials deleted: ${#ids[@]} bootstrap token(s), the kubeadm-certs Secret"
