#!/usr/bin/env bash
# Import brainscan's data view and dashboards (elk/kibana/saved_objects.ndjson) through Kibana's
# saved objects API, replacing earlier copies. Idempotent.
#
#   KIBANA_URL=http://localhost:5601 ELASTIC_PASSWORD=... elk/scripts/import-kibana-objects.sh
#
# ELASTIC_USERNAME (default elastic) / ELASTIC_PASSWORD  a user allowed to write saved objects
# KIBANA_SPACE    import into this space instead of the default one
# KIBANA_CA       CA certificate for an https URL with a private CA
# WAIT_SECONDS    how long to wait for Kibana (default 300)
set -euo pipefail

ELK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OBJECTS="${ELK_DIR}/kibana/saved_objects.ndjson"
KIBANA_URL="${KIBANA_URL:-http://localhost:5601}"
KIBANA_USER="${ELASTIC_USERNAME:-elastic}"
KIBANA_PASSWORD="${ELASTIC_PASSWORD:?set ELASTIC_PASSWORD (the password of ELASTIC_USERNAME)}"
WAIT_SECONDS="${WAIT_SECONDS:-300}"
BASE="${KIBANA_URL}"
if [[ -n "${KIBANA_SPACE:-}" ]]; then BASE="${KIBANA_URL}/s/${KIBANA_SPACE}"; fi
CURL=(curl --silent --show-error --user "${KIBANA_USER}:${KIBANA_PASSWORD}" --max-time 60)
if [[ -n "${KIBANA_CA:-}" ]]; then CURL+=(--cacert "${KIBANA_CA}"); fi

echo "waiting for ${KIBANA_URL} (at most ${WAIT_SECONDS}s)"
deadline=$((SECONDS + WAIT_SECONDS))
until "${CURL[@]}" "${KIBANA_URL}/api/status" 2>/dev/null | grep -q '"level":"available"'; do
  if ((SECONDS >= deadline)); then
    echo "Kibana at ${KIBANA_URL} did not become available in ${WAIT_SECONDS}s" >&2
    exit 1
  fi
  sleep 3
done

answer="$("${CURL[@]}" --request POST --header 'kbn-xsrf: true' \
  --form "file=@${OBJECTS}" "${BASE}/api/saved_objects/_import?overwrite=true")"
if ! grep -q '"success":true' <<<"${answer}"; then
  echo "import of ${OBJECTS} failed: ${answer}" >&2
  exit 1
fi
echo "imported $(grep -o '"successCount":[0-9]*' <<<"${answer}" | cut -d: -f2) saved objects into ${BASE}"
