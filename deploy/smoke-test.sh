#!/usr/bin/env bash
# Manual smoke test of a deployed waystream OpenSearch domain (no CI runs a live cluster).
#
#   deploy/smoke-test.sh https://search-waystream-xxxx.us-east-1.es.amazonaws.com
#
# Prints how many points are indexed (GET waystream-points*/_count) and how many lie within
# 10 km of Beijing (39.98, 116.32, where the Geolife data is), with the three latest of them.
# Exits 1 if a request fails or no point is indexed. Needs curl (or awscurl) and python3.
#
# Authentication, first match wins:
#   WAYSTREAM_OS_USER / WAYSTREAM_OS_PASSWORD set  -> HTTP basic auth (a domain with
#                                                     fine-grained access control)
#   awscurl on PATH (pip install awscurl)          -> SigV4 with your AWS credentials (the stack's
#                                                     AdminPrincipalArn, or any principal the
#                                                     domain's access policy allows)
#   otherwise                                      -> unsigned curl (works from the stack's
#                                                     DashboardsAllowedCidr)
# WAYSTREAM_UNSIGNED=1 forces unsigned curl. The region for SigV4 is AWS_REGION, else taken
# from the endpoint's name. WAYSTREAM_INDEX, WAYSTREAM_LAT, WAYSTREAM_LON, WAYSTREAM_RADIUS
# change what is queried.

set -euo pipefail

usage() {
    echo "usage: $0 https://<opensearch endpoint>   (the stack's OpenSearchEndpoint output)"
}

endpoint=${1:-${WAYSTREAM_OPENSEARCH_ENDPOINT:-}}
if [[ -z $endpoint || $endpoint == -h || $endpoint == --help ]]; then
    usage >&2
    exit 2
fi
endpoint=${endpoint%/}
[[ $endpoint == http://* || $endpoint == https://* ]] || endpoint="https://$endpoint"

index=${WAYSTREAM_INDEX:-waystream-points*}
lat=${WAYSTREAM_LAT:-39.98}
lon=${WAYSTREAM_LON:-116.32}
radius=${WAYSTREAM_RADIUS:-10km}

region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
if [[ -z $region && $endpoint =~ \.([a-z0-9-]+)\.es\.amazonaws\.com ]]; then
    region=${BASH_REMATCH[1]}
fi

if [[ -n ${WAYSTREAM_OS_USER:-} ]]; then
    auth=basic
elif [[ ${WAYSTREAM_UNSIGNED:-} != 1 ]] && command -v awscurl >/dev/null 2>&1; then
    auth=sigv4
    [[ -n $region ]] || { echo "set AWS_REGION for SigV4" >&2; exit 2; }
else
    auth=none
fi

# request METHOD PATH [BODY]: prints the response body; fails on an HTTP error.
request() {
    local method=$1 path=$2 body=${3:-} response status
    local url="$endpoint/$path"
    local args=(-X "$method" -H 'Content-Type: application/json')
    if [[ -n $body ]]; then args+=(-d "$body"); fi
    case "$auth" in
        sigv4)
            # awscurl prints the body only: an error shows up as an "error" member below.
            awscurl --service es --region "$region" "${args[@]}" "$url"
            return
            ;;
        basic)
            response=$(curl -sS "${args[@]}" -u "$WAYSTREAM_OS_USER:${WAYSTREAM_OS_PASSWORD:?set WAYSTREAM_OS_PASSWORD}" \
                -w '\n%{http_code}' "$url")
            ;;
        none)
            response=$(curl -sS "${args[@]}" -w '\n%{http_code}' "$url")
            ;;
    esac
    status=${response##*$'\n'}
    body=${response%$'\n'*}
    printf '%s\n' "$body"
    if ((status >= 400)); then
        echo "HTTP $status from $method $path" >&2
        return 1
    fi
}

# json EXPRESSION: evaluates a Python expression over the JSON document on stdin (as `d`).
json() {
    python3 -c '
import json, sys
d = json.load(sys.stdin)
if isinstance(d, dict) and "error" in d:
    sys.exit("OpenSearch error: " + json.dumps(d["error"])[:500])
print(eval(sys.argv[1]))
' "$1"
}

echo "endpoint: $endpoint (auth: $auth)"

total=$(request GET "$index/_count" | json 'd["count"]')
echo "points indexed: $total   (GET $index/_count)"

geo_query=$(cat <<EOF
{
  "size": 3,
  "track_total_hits": true,
  "sort": [{"ts": "desc"}],
  "_source": ["user", "trajectory", "seq", "ts", "location", "speed_mps", "zones", "flags"],
  "query": {"geo_distance": {"distance": "$radius", "location": {"lat": $lat, "lon": $lon}}}
}
EOF
)
near=$(request POST "$index/_search" "$geo_query")
count=$(json 'd["hits"]["total"]["value"]' <<<"$near")
echo "within $radius of $lat,$lon: $count   (geo_distance on location)"
json '"\n".join(
    "  {user}/{trajectory} #{seq}  {ts}  {location}  speed {speed_mps} m/s  zones {zones}  flags {flags}".format(**h["_source"])
    for h in d["hits"]["hits"]) or "  (none)"' <<<"$near"

if ((total == 0)); then
    echo "no points indexed yet: is data flowing? (docs/deploy.md, 'Feed it')" >&2
    exit 1
fi
