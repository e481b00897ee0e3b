#!/usr/bin/env bash
# Build the production image and smoke-test it: the first-run steps of deploy/README.md, then
# `celedger serve` as compose runs it (the image's CMD, --init, read-only root, tmpfs /tmp),
# against a PostgreSQL database you give.  Not run by CI (no container engine there).
#
#   SMOKE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/celedger_image_smoke \
#       deploy/smoke-image.sh [BASE_IMAGE]          # default python:3.11-slim-bookworm
#
# SMOKE_DATABASE_URL  an EMPTY database (created, never migrated) that the container reaches
#                     with --network host; the script does not drop it
# SMOKE_IMAGE         tag to build and test (default celedger:smoke)
# SMOKE_BUILD=0       test the existing tag instead of building it
# SMOKE_BUILD_OPTS    extra `docker build` options, word-split (e.g. --network host)
# SMOKE_KEEP_IMAGE=1  keep the image (removed at the end otherwise, if built here)
#
# The server listens on the host's port 8000 (host network: the image's HEALTHCHECK asks
# 127.0.0.1:8000), so that port must be free.  Needs docker, curl, openssl and python3.
# Exit 0 when every check passed; the first failed check stops it with its reason.
#
# Without access to Docker Hub, an equivalent base image can be made from Debian's mirror
# (Debian 12's Python is 3.11; `python` must exist, as in the official image):
#   debootstrap --variant=minbase bookworm /tmp/rootfs http://deb.debian.org/debian
#   chroot /tmp/rootfs sh -c 'apt-get update && apt-get install -y --no-install-recommends \
#       python3 python3-venv python3-pip python-is-python3 ca-certificates && apt-get clean'
#   tar -C /tmp/rootfs -c . | docker import --change 'ENV LANG=C.UTF-8' \
#       --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
#       - local/python:3.11-bookworm
#   deploy/smoke-image.sh local/python:3.11-bookworm
# (PATH must be set: the Dockerfile extends it.  Behind a TLS-intercepting proxy, put its CA in
# /tmp/rootfs/usr/local/share/ca-certificates and run update-ca-certificates in the chroot
# before the import: the build's pip must reach PyPI.  The image size then also counts what
# the official slim image leaves out, unless /etc/apt/apt.conf.d/docker-clean and the dpkg
# path-excludes of debian:bookworm-slim are copied in too.)
set -euo pipefail

BASE_IMAGE=${1:-python:3.11-slim-bookworm}
DB_URL=${SMOKE_DATABASE_URL:?set SMOKE_DATABASE_URL to an empty PostgreSQL database}
IMAGE=${SMOKE_IMAGE:-celedger:smoke}
BUILD=${SMOKE_BUILD:-1}
read -r -a BUILD_OPTS <<<"${SMOKE_BUILD_OPTS:-}"
PORT=8000
BASE_URL=http://127.0.0.1:$PORT
ORIGIN=smoke.celedger.invalid/log
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=celedger-smoke-$$
VOLUME=celedger-smoke-data-$$
WORK=$(mktemp -d)

say() { printf '\n== %s\n' "$*"; }
fail() {
    printf 'FAILED: %s\n' "$*" >&2
    exit 1
}
cleanup() {
    local rc=$?
    if [ "$rc" -ne 0 ] && docker container inspect "$NAME" >/dev/null 2>&1; then
        echo "--- last log lines of $NAME:" >&2
        docker logs --tail 40 "$NAME" >&2 || true
    fi
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker volume rm "$VOLUME" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    if [ "$BUILD" = 1 ] && [ "${SMOKE_KEEP_IMAGE:-0}" != 1 ]; then
        docker rmi "$IMAGE" >/dev/null 2>&1 || true
    fi
    echo "(the database was left as it is: drop it yourself)"
    exit "$rc"
}
trap cleanup EXIT

# psql inside the image: the operator needs no client of their own.  psql wants a libpq URI.
psql_in_image() {
    docker run --rm --network host --entrypoint psql "$IMAGE" \
        "${DB_URL/+psycopg/}" -v ON_ERROR_STOP=1 -Atc "$1"
}

if curl -s -o /dev/null "$BASE_URL/"; then
    fail "something already answers on $BASE_URL: the smoke server needs port $PORT"
fi

# --- build ------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
    say "build $IMAGE from $BASE_IMAGE"
    start=$(date +%s)
    docker build "${BUILD_OPTS[@]}" -f "$ROOT/deploy/Dockerfile" \
        --build-arg "PYTHON_IMAGE=$BASE_IMAGE" -t "$IMAGE" "$ROOT"
    echo "built in $(($(date +%s) - start)) s"
fi
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "image size: $((size / 1000000)) MB ($size bytes)"
[ "$(docker image inspect -f '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] ||
    fail "the image's USER is not 10001:10001"

# --- first run (deploy/README.md "First run", without compose) --------------------------------
say "settings and secrets (as deploy/README.md generates them)"
tables=$(psql_in_image "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
[ "$tables" = 0 ] || fail "the database is not empty ($tables tables): give a fresh one"
pii_key=$(python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')
kek=$(python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')
p12_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
mkdir "$WORK/secrets"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 730 \
    -subj "/CN=CE Ledger trial signer" -keyout "$WORK/signer.key" -out "$WORK/signer.crt" 2>/dev/null
openssl pkcs12 -export -inkey "$WORK/signer.key" -in "$WORK/signer.crt" \
    -out "$WORK/secrets/signer.p12" -passout "pass:$p12_password"
# A throwaway trial certificate: readable by uid 10001 without `sudo chown` (the README's
# chown 10001 + mode 0400 is for the real one).
chmod 0755 "$WORK" "$WORK/secrets" && chmod 0444 "$WORK/secrets/signer.p12"
umask 077
cat >"$WORK/env" <<EOF
CELEDGER_ENVIRONMENT=production
CELEDGER_DATABASE_URL=$DB_URL
CELEDGER_ORIGIN=$ORIGIN
CELEDGER_PUBLIC_URL=$BASE_URL
CELEDGER_PII_KEY=$pii_key
CELEDGER_KEY_ENCRYPTION_KEY=$kek
CELEDGER_PDF_SIGNER_P12=/run/secrets/pdf_signer
CELEDGER_PDF_SIGNER_PASSWORD=$p12_password
CELEDGER_LOG_FORMAT=json
EOF
umask 022
docker volume create "$VOLUME" >/dev/null
# What compose gives every celedger service: env_file, the data volume, the secret, host network
# here (the database is on the host), tini as PID 1, a read-only root with a tmpfs /tmp.
RUN_OPTS=(--network host --env-file "$WORK/env" -v "$VOLUME:/var/lib/celedger"
    -v "$WORK/secrets/signer.p12:/run/secrets/pdf_signer:ro" --init --read-only --tmpfs /tmp)
celedger() { docker run --rm "${RUN_OPTS[@]}" "$IMAGE" "$@"; }

say "celedger keys init"
out=$(celedger keys init) && echo "$out"
vkey=$(sed -n 's/^verifier key (publish this): //p' <<<"$out")
[ -n "$vkey" ] || fail "keys init printed no verifier key"

# --- serve: the image's own CMD ---------------------------------------------------------------
say "serve (the image's CMD) on an empty database"
docker run -d --name "$NAME" "${RUN_OPTS[@]}" "$IMAGE" >/dev/null
deadline=$(($(date +%s) + 120))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/readyz")" = 200 ]; do
    [ "$(docker inspect -f '{{.State.Running}}' "$NAME")" = true ] ||
        fail "the server exited with $(docker inspect -f '{{.State.ExitCode}}' "$NAME")"
    [ "$(date +%s)" -lt "$deadline" ] || fail "/readyz not 200 within 120 s"
    sleep 1
done
echo "ready after $((120 - deadline + $(date +%s))) s"

say "checks"
procs=$(docker top "$NAME" -o pid,uid,args | tail -n +2)
echo "$procs"
! awk '{print $2}' <<<"$procs" | grep -qvx 10001 || fail "a process does not run as uid 10001"
[ "$(docker exec "$NAME" id -u)" = 10001 ] || fail "docker exec is not uid 10001"
echo "every process runs as uid 10001"

migrated=$(psql_in_image "SELECT version_num FROM alembic_version")
[ -n "$migrated" ] || fail "no alembic_version after start"
echo "migrations applied at start: alembic_version $migrated, $(psql_in_image \
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") tables"

for path in /healthz /readyz; do
    body=$(curl -fsS "$BASE_URL$path") || fail "GET $path"
    echo "GET $path -> 200 $body"
done
curl -fsS "$BASE_URL/schema/openapi.json" -o "$WORK/openapi.json" || fail "GET /schema/openapi.json"
python3 - "$WORK/openapi.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
print(f"GET /schema/openapi.json -> 200, OpenAPI {doc['openapi']}, {len(doc['paths'])} paths")
EOF

say "first run: db upgrade, keys issuing rotate, authority create-key (deploy/README.md)"
celedger db upgrade
celedger keys issuing rotate
out=$(celedger authority create-key) && echo "${out%%cek_*}cek_… (redacted here)"
api_key=$(grep -o 'cek_[A-Za-z0-9_-]*' <<<"$out" | head -n 1)
[ -n "$api_key" ] || fail "authority create-key printed no key"
auth=(-H "Authorization: Bearer $api_key")
curl -fsS "${auth[@]}" "$BASE_URL/api/v1/registry/whoami" || fail "the authority key is refused"
echo
# One write through the served API (a governance act: its ledger entry is appended in the same
# transaction), as the operator's next step would be.
created=$(curl -fsS "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"code": "CN-SC"}' "$BASE_URL/api/v1/registry/jurisdictions") ||
    fail "POST /api/v1/registry/jurisdictions"
echo "POST /api/v1/registry/jurisdictions -> $created"
index=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["log_index"])' <<<"$created")

say "the log: checkpoint, inclusion proof, audit (local and of the served tiles)"
curl -fsS "$BASE_URL/log/checkpoint" | tee "$WORK/checkpoint"
size_now=$(sed -n 2p "$WORK/checkpoint")
[ "$size_now" -ge 1 ] || fail "the first-run acts appended nothing"
[ "$size_now" -gt "$index" ] || fail "checkpoint size $size_now does not cover entry $index"
curl -fsS "$BASE_URL/api/v1/log/entries/$index" && echo
curl -fsS "$BASE_URL/api/v1/log/proof/inclusion?index=$index" -o "$WORK/proof" ||
    fail "GET /api/v1/log/proof/inclusion?index=$index"
echo "inclusion proof of entry $index in size $size_now: 200"
celedger audit
celedger audit --remote "$BASE_URL/log/" --origin "$ORIGIN" --vkey "$vkey"

say "HEALTHCHECK"
deadline=$(($(date +%s) + 90))
until [ "$(docker inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ]; do
    [ "$(date +%s)" -lt "$deadline" ] ||
        fail "health $(docker inspect -f '{{json .State.Health}}' "$NAME")"
    sleep 2
done
echo "docker inspect: healthy; the last probes' exit codes:" \
    "$(docker inspect -f '{{range .State.Health.Log}}{{.ExitCode}} {{end}}' "$NAME")"

say "docker stop (SIGTERM; compose's stop_grace_period is 30 s)"
start=$(date +%s.%N)
docker stop -t 30 "$NAME" >/dev/null
took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" \
    "$start" "$(date +%s.%N)")
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
echo "stopped in $took s, exit code $exit_code"
docker logs "$NAME" >"$WORK/server.log" 2>&1
tail -n 3 "$WORK/server.log"
[ "$exit_code" = 0 ] || fail "exit code $exit_code after SIGTERM"
grep -q '"Stopping parent process' "$WORK/server.log" || fail "no shutdown in the log"
# uvicorn kills and replaces a worker that does not answer its health ping within 5 s of being
# started (all workers import at once: seen on a loaded 2-core host); the service still serves.
echo "workers replaced while running: $(grep -c '"Child process \[[0-9]*\] died' "$WORK/server.log" || true)"
python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 30)" "$took" || fail "SIGTERM needed the kill"

say "all checks passed ($IMAGE, $((size / 1000000)) MB)"
