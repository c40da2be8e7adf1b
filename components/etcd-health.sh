#!/usr/bin/env bash
# On the first etcd node: wait until every member answers /health over TLS. Parameters: ENDPOINTS (one per line)
set -euo pipefail

wait_for_etcd_members "$ENDPOINTS"
