#!/usr/bin/env bash
# On the first control plane, every minute (a systemd timer) and once at setup: approves the kubelets'
# serving-certificate CSRs (signer kubernetes.io/kubelet-serving) of the configured nodes, checked
# against the config. The signer checks only their shape, not that the names are the requester's
# (pkg/apis/certificates/helpers.go ValidateKubeletServingCSR, used by pkg/controller/certificates/
# signer/signer.go isKubeletServing, @v1.36.4), so the approver must. Approved: requested by
# system:node:NAME (spec.username, set by the API server) of a node in NODES, subject exactly
# O=system:nodes CN=system:node:NAME, subject alternative names only DNS:NAME and the node's address —
# what the kubelet asks for: pkg/kubelet/certificate/kubelet.go newGetTemplateFn@v1.36.4, from the
# node's addresses, i.e. its --node-ip and its hostname, which kubeadm sets to the node name.
# A pending CSR of a configured node that asks for anything else is denied; a CSR of any other
# requester is left pending (not ours to judge). Parameters: NODES (one "name address" a line)
set -euo pipefail

declare -A address=()
while read -r name ip; do
  if [[ -n $name ]]; then address[$name]=$ip; fi
done <<<"$NODES"

# Why the CSR (base64 PEM in $3) is not what node $1 at address $2 may have; nothing when it is.
serving_request_problem() {
  local node=$1 ip=$2 pem subject sans entry found=0
  pem=$(base64 -d <<<"$3" 2>/dev/null) || { echo "its request is not base64"; return; }
  subject=$(openssl req -noout -subject -nameopt RFC2253 <<<"$pem" 2>/dev/null) \
    || { echo "its request is not a PEM certificate request"; return; }
  if [[ $subject != "subject=CN=system:node:$node,O=system:nodes" ]]; then
    echo "its subject is ${subject#subject=}, not CN=system:node:$node,O=system:nodes"
    return
  fi
  sans=$(openssl req -noout -text <<<"$pem" | awk '/X509v3 Subject Alternative Name:/ { getline; print; exit }')
  while read -r entry; do
    [[ -n $entry ]] || continue
    if [[ $entry != "DNS:$node" && $entry != "IP Address:$ip" ]]; then
      echo "it asks for $entry, not only DNS:$node and IP Address:$ip"
      return
    fi
    found=1
  done < <(tr ',' '\n' <<<"$sans")
  if ((found == 0)); then echo "it names no DNS name or IP address"; fi
}

# One CSR a line: name, signer, requester, request, condition types (none while pending).
csrs=$(admin_kubectl get csr -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.signerName}{" "}{.spec.username}{" "}{.spec.request}{" "}{.status.conditions[*].type}{"\n"}{end}')
while read -r csr signer user request conditions; do
  [[ -n $csr && $signer == kubernetes.io/kubelet-serving && -z $conditions ]] || continue
  node=${user#system:node:}
  if [[ $user != "system:node:$node" || -z ${address[$node]+set} ]]; then
    log "CSR $csr: requested by $user, not a node of this cluster's config: left pending"
    continue
  fi
  problem=$(serving_request_problem "$node" "${address[$node]}" "$request")
  if [[ -z $problem ]]; then
    admin_kubectl certificate approve "$csr" >&2
    log "CSR $csr: serving certificate of $node approved"
  else
    admin_kubectl certificate deny "$csr" >&2
    log "CSR $csr of $node denied: $problem"
  fi
done <<<"$csrs"
