#!/usr/bin/env bash
# On the first control plane: the exported credentials — a ServiceAccount per credential with a
# long-lived token Secret and its (Cluster)RoleBindings — applied with the node's own admin.conf; every
# credential the config no longer names (an earlier revision or renewal, a changed or dropped scoped
# entry) is deleted, which invalidates its token. Prints, as its very last action, one JSON document:
# {"ca": base64 CA certificate, "tokens": {ID: base64 token}}.
# Parameters: MANIFEST (the objects) CREDENTIAL_IDS (one per line) GRANTS ("ID NAMESPACE" per line: where
# each credential's role is bound; cluster-wide ones name NAMESPACE) NAMESPACE LABEL CA_CERT
set -euo pipefail

wait_for_apiserver
mapfile -t ids < <(grep -v '^$' <<<"$CREDENTIAL_IDS")
log "applying the exported credentials: ${ids[*]}"
admin_kubectl apply -f - <<<"$MANIFEST" >&2

# The ServiceAccount token controller fills in a token Secret once its ServiceAccount exists
# (pkg/controller/serviceaccount/tokens_controller.go@v1.36.4 syncSecret, generateTokenIfNeeded).
token_of() { admin_kubectl get secret -n "$NAMESPACE" "$1-token" -o 'jsonpath={.data.token}' 2>/dev/null; }
issued() { [[ -n $(token_of "$1") ]]; }
declare -A tokens=()
for id in "${ids[@]}"; do
  retry 30 2 issued "$id" || die "the token of credential $id was not issued within a minute"
  token=$(token_of "$id")
  [[ $token =~ ^[A-Za-z0-9+/=]+$ ]] || die "the token Secret of credential $id does not hold base64 data"
  tokens[$id]=$token
done

# Printed only once the API server authorizes them. Both come after `apply` returns: the RBAC authorizer
# sees bindings through an informer (pkg/kubeapiserver/authorizer/config.go), and view, edit and admin are
# aggregated ClusterRoles whose rules kube-controller-manager's clusterrole-aggregation controller fills in
# (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), @v1.36.4. Each of those roles, and
# cluster-admin, reads ConfigMaps where it is bound (viewRules).
authorized() { admin_kubectl auth can-i --quiet get configmaps -n "$2" --as "system:serviceaccount:$NAMESPACE:$1" </dev/null; }
while read -r id bound_in; do
  retry 30 2 authorized "$id" "$bound_in" \
    || die "the API server did not authorize credential $id in namespace $bound_in within a minute"
done < <(grep -v '^$' <<<"$GRANTS")
log "the API server authorizes every credential"

# Only once the new credentials work: the others go. The API server rejects a token whose Secret or
# ServiceAccount is gone (pkg/serviceaccount/legacy.go@v1.36.4 legacyValidator.Validate, with
# --service-account-lookup on by default).
selector="$LABEL,$LABEL notin ($(IFS=,; echo "${ids[*]}"))"
deleted=$(admin_kubectl delete clusterrolebindings,rolebindings,secrets,serviceaccounts --all-namespaces -l "$selector")
[[ -z $deleted ]] || printf '%s\n' "$deleted" >&2
if grep -q ' deleted' <<<"$deleted"; then
  # Each kube-apiserver keeps a successful token authentication for 10 s (TokenSuccessCacheTTL,
  # pkg/kubeapiserver/options/authentication.go; authenticator/config.go tokencache, @v1.36.4): a revoked
  # token used just before still works that long. Wait it out: once this step ends, every API server refuses it.
  log "waiting 10 s until no API server accepts the revoked tokens from its cache"
  sleep 11
fi

ca=$(base64 -w0 "$CA_CERT")
entries=()
for id in "${ids[@]}"; do entries+=("\"$id\":\"${tokens[$id]}\""); done
log "credentials ready; printing them"
printf '{"ca":"%s","tokens":{%s}}\n' "$ca" "$(IFS=,; echo "${entries[*]}")"
