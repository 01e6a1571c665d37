#!/usr/bin/env bash
# Install brainscan's log storage in Elasticsearch: the ILM policy, the component and index
# templates, and (when their passwords are given) the Logstash writer user and the
# kibana_system password. Idempotent: every call replaces what it installs.
#
#   ELASTICSEARCH_URL=http://localhost:9200 ELASTIC_PASSWORD=... elk/scripts/setup-elasticsearch.sh
#
# ELASTIC_USERNAME (default elastic) / ELASTIC_PASSWORD  a user allowed to manage templates
# LOGSTASH_WRITER_PASSWORD   creates role brainscan_logstash_writer + user brainscan_logstash
# KIBANA_SYSTEM_PASSWORD     sets the password of the built-in kibana_system user
# ELASTICSEARCH_CA           CA certificate for an https URL with a private CA
# WAIT_SECONDS               how long to wait for the cluster (default 300)
set -euo pipefail

ELK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ES_URL="${ELASTICSEARCH_URL:-http://localhost:9200}"
ES_USER="${ELASTIC_USERNAME:-elastic}"
ES_PASSWORD="${ELASTIC_PASSWORD:?set ELASTIC_PASSWORD (the password of ELASTIC_USERNAME)}"
WAIT_SECONDS="${WAIT_SECONDS:-300}"
CURL=(curl --silent --show-error --user "${ES_USER}:${ES_PASSWORD}" --max-time 30)
if [[ -n "${ELASTICSEARCH_CA:-}" ]]; then CURL+=(--cacert "${ELASTICSEARCH_CA}"); fi

# json_string TEXT: TEXT as a JSON string literal (a password may hold quotes or backslashes).
json_string() {
  printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

# es METHOD PATH [BODY_FILE]: print the answer; fail (naming the request) on a non-2xx status.
es() {
  local method="$1" path="$2" body="${3:-}" out status
  out="$(mktemp)"
  if [[ -n "${body}" ]]; then
    status="$("${CURL[@]}" --output "${out}" --write-out '%{http_code}' --request "${method}" \
      --header 'Content-Type: application/json' --data-binary "@${body}" "${ES_URL}${path}")"
  else
    status="$("${CURL[@]}" --output "${out}" --write-out '%{http_code}' --request "${method}" \
      "${ES_URL}${path}")"
  fi
  if [[ "${status}" != 2* ]]; then
    echo "${method} ${path} answered ${status}: $(cat "${out}")" >&2
    rm -f "${out}"
    return 1
  fi
  rm -f "${out}"
  echo "${method} ${path}: ${status}"
}

echo "waiting for ${ES_URL} (at most ${WAIT_SECONDS}s)"
deadline=$((SECONDS + WAIT_SECONDS))
until "${CURL[@]}" --fail --output /dev/null \
  "${ES_URL}/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null; do
  if ((SECONDS >= deadline)); then
    echo "Elasticsearch at ${ES_URL} did not become ready in ${WAIT_SECONDS}s" >&2
    exit 1
  fi
  sleep 3
done

es PUT /_ilm/policy/brainscan-logs "${ELK_DIR}/elasticsearch/ilm-policy.json"
es PUT /_component_template/brainscan-logs@mappings \
  "${ELK_DIR}/elasticsearch/component-template-mappings.json"
es PUT /_index_template/brainscan-logs "${ELK_DIR}/elasticsearch/index-template.json"
es PUT /_index_template/brainscan-deadletter \
  "${ELK_DIR}/elasticsearch/index-template-deadletter.json"

if [[ -n "${LOGSTASH_WRITER_PASSWORD:-}" ]]; then
  es PUT /_security/role/brainscan_logstash_writer "${ELK_DIR}/elasticsearch/logstash-writer-role.json"
  user_body="$(mktemp)"
  printf '{"password": %s, "roles": ["brainscan_logstash_writer"], "full_name": "brainscan Logstash"}' \
    "$(json_string "${LOGSTASH_WRITER_PASSWORD}")" >"${user_body}"
  es PUT /_security/user/brainscan_logstash "${user_body}"
  rm -f "${user_body}"
fi
if [[ -n "${KIBANA_SYSTEM_PASSWORD:-}" ]]; then
  password_body="$(mktemp)"
  printf '{"password": %s}' "$(json_string "${KIBANA_SYSTEM_PASSWORD}")" >"${password_body}"
  es POST /_security/user/kibana_system/_password "${password_body}"
  rm -f "${password_body}"
fi
echo "Elasticsearch is ready for brainscan logs"
