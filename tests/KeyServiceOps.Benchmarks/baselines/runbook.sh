#!/usr/bin/env bash
# The runbook by hand, the fastest plain way (issue #32's baseline for "runbook, crash -> recovered"): the calls
# Invoke-KeyServiceRunbook makes, as curl and ssh. Readable on its own; the benchmark runs it against the lab:
#   KONG=http://127.0.0.1:8001/ UPSTREAM=api_key_service ADDR=10.0.0.5 PORT=8888 \
#   SSH="ssh -q -p 22 -i key -o UserKnownHostsFile=known -o BatchMode=yes ops" \
#   PD=https://api.pagerduty.com/ PD_TOKEN=... PD_FROM=oncall@example.com INCIDENT=Q1X2 POLL=0.2 bash runbook.sh
set -euo pipefail
target="$ADDR:$PORT"
health="http://$ADDR:$PORT/api/auth/healthz"
ok='The API is available and operational'
pd() { curl -sf -H "Authorization: Token token=$PD_TOKEN" -H 'Accept: application/vnd.pagerduty+json;version=2' -H "From: $PD_FROM" "$@"; }
note() { pd -X POST -H 'Content-Type: application/json' -d "{\"note\":{\"content\":\"$1\"}}" "${PD}incidents/$INCIDENT/notes" >/dev/null; }

# 1. Verify: the instance is down.
if curl -s -m 5 "$health" | grep -q "$ok"; then echo "healthy: nothing to do"; exit 0; fi
pd "${PD}incidents/$INCIDENT" >/dev/null
# 2. Take it out of the ring-balancer (after a look at the other targets), and say so on the incident.
curl -sf "${KONG}upstreams/$UPSTREAM/targets" >/dev/null
curl -sf -X DELETE "${KONG}upstreams/$UPSTREAM/targets/$target" >/dev/null
note "removed $target from $UPSTREAM"
# 3. Read the logs and the container state; restart when no dependency fault shows.
logs=$($SSH@$ADDR docker logs --tail 50 api_key_service 2>&1 || true)
# A dependency fault: an error or fatal line about cipher or IAM (an info line naming them is not one).
if grep -iE 'level=(error|fatal)' <<<"$logs" | grep -qiE 'cipher|iam'; then note "dependency fault: not restarted"; echo "dependency fault"; exit 1; fi
$SSH@$ADDR "docker inspect --format '{{json .State}}' api_key_service" >/dev/null
$SSH@$ADDR docker restart api_key_service >/dev/null
note "restarted api_key_service on $ADDR"
# 4. Wait until it answers again.
until curl -s -m 5 "$health" | grep -q "$ok"; do sleep "$POLL"; done
# 5. Put it back, and say so.
curl -sf -X POST -d "target=$target" -d weight=100 "${KONG}upstreams/$UPSTREAM/targets" >/dev/null
note "recovered: $target back in $UPSTREAM"
echo recovered
