#!/usr/bin/env bash
# A self-healing pass that removes the dead, the fastest plain way (issue #32's baseline): page the upstream's targets,
# probe every one (curl -m TIMEOUT, all at once), and DELETE the ones that do not answer, up to MAX. Readable alone:
#   KONG=http://127.0.0.1:8001/ UPSTREAM=api_key_service TIMEOUT=2 MAX=100 bash selfhealing-removal.sh
set -euo pipefail
list=$(mktemp); dead=$(mktemp)
next="upstreams/$UPSTREAM/targets?size=1000"
while [ -n "$next" ] && [ "$next" != null ]; do
  page=$(curl -sf "${KONG}${next#/}")
  jq -r '.data[] | select(.weight > 0) | .target' <<<"$page" >> "$list"
  next=$(jq -r '.next // empty' <<<"$page")
done
# Probe all at once; print the target when the health answer does not come or is not the expected text.
xargs -P 1024 -I{} sh -c 'curl -s -m '"$TIMEOUT"' http://{}/api/auth/healthz | grep -q "The API is available and operational" || echo {}' < "$list" > "$dead"
start=$(date +%s.%N)
head -n "$MAX" "$dead" | xargs -P 16 -I{} curl -sf -X DELETE "${KONG}upstreams/$UPSTREAM/targets/{}" -o /dev/null
end=$(date +%s.%N)
wc -l < "$dead"                              # how many were dead
echo "$end - $start" | bc                    # seconds the DELETEs alone took
