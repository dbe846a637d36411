# shellcheck shell=bash
# The split deployment on loopback (issue 14), sourced by scripts/up
# (--split) and scripts/test-external (--split): the three apps of split/
# each in its own test-host process, an nginx mTLS terminator in front of
# each private one (env/mtls/terminator.conf.template, the file AKS uses),
# and the docstore as a fourth process standing in for Cosmos DB.
#
#   client ─http─▶ gateway ─https+cert CN=gateway─▶ nginx ─▶ patient-api
#                  patient-api ─https+cert CN=patient-api─▶ nginx ─▶ audit-api
#                  patient-api, audit-api ─http─▶ docstore (local only)
#
# A throwaway CA and certificates are made at start (openssl), as
# cert-manager makes them on AKS; each caller presents its certificate
# through the runtime config's [[client_tls]], as Spin does. Host keys stay
# the second layer. Needs nginx, envsubst (gettext-base) and openssl.
#
# split_start WORK HOST_BIN ENV_FILE GATEWAY_LISTEN: starts everything with
# its files under WORK and sets split_base_url; split_check_hops asks each
# terminator directly what it refuses; split_stop stops it. Logs:
# WORK/<name>/log.

split_pids=()
split_base_url=
split_url=
split_patient_mtls=
split_audit_mtls=

split_need_tools() {
  local missing=()
  for tool in nginx envsubst openssl python3 curl; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "the split mode needs ${missing[*]} (Debian: apt-get install nginx-light gettext-base openssl python3 curl)" >&2
    return 1
  fi
}

split_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# split_cert DIR NAME CN [SAN]: a P-256 leaf signed by DIR/ca.
split_cert() {
  local dir=$1 name=$2 cn=$3 san=${4:-DNS:$3}
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/$name.key" \
    -out "$dir/$name.csr" -subj "/CN=$cn" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > "$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/$name.crt" -days 2 -extfile "$dir/$name.ext" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
}

split_make_certs() { # DIR
  local dir=$1
  mkdir -p "$dir"
  (
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" \
      -out "$dir/ca.crt" -subj "/CN=patient-records local split CA" -days 2 2>/dev/null
    # Both terminators serve one certificate for this machine's loopback.
    split_cert "$dir" server localhost "DNS:localhost,IP:127.0.0.1"
    split_cert "$dir" gateway gateway
    split_cert "$dir" patient-api patient-api
    # Nothing signs with the CA after this.
    rm -f "$dir/ca.key" "$dir/ca.srl"
  )
}

# split_await WHAT PID LOG PROBE...: runs PROBE until it succeeds (120 s at
# most), failing with LOG when PID exits first.
split_await() {
  local what=$1 pid=$2 log=$3
  shift 3
  for _ in $(seq 1 600); do
    "$@" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$what exited before serving:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "$what did not start serving within 120 s" >&2
  return 1
}

# The URL a test host prints once it serves (it listens on port 0).
split_served_url() { # LOG
  split_url=$(sed -n 's/^Serving \(http:[^ ]*\).*/\1/p' "$1" | head -n1)
  [ -n "$split_url" ]
}

split_listening() { # PORT; sets split_url to the terminator's https URL
  python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $1)))" 2>/dev/null &&
    split_url="https://127.0.0.1:$1"
}

# split_host NAME MANIFEST [VAR=value ...]: a test-host process serving
# MANIFEST on a free loopback port, in WORK/NAME (its .env, its state, its
# runtime config if WORK/NAME/runtime-config.toml exists); sets split_url.
# (Not called in $(...): the pid must stay in this shell's split_pids.)
split_host() {
  local name=$1 manifest=$2
  shift 2
  local dir=$split_work/$name
  mkdir -p "$dir/state"
  cp "$split_env_file" "$dir/.env"
  local args=(--manifest "$manifest" --listen "${split_listen[$name]:-127.0.0.1:0}" --state-dir "$dir/state")
  [ -f "$dir/runtime-config.toml" ] && args+=(--runtime-config "$dir/runtime-config.toml")
  (
    # Only this app's .env and the values given here configure it.
    for var in $(compgen -e | grep '^SPIN_VARIABLE_' || true); do unset "$var"; done
    for assignment in "$@"; do export "SPIN_VARIABLE_$assignment"; done
    cd "$dir" || exit 1
    exec "$split_host_bin" "${args[@]}"
  ) > "$dir/log" 2>&1 &
  split_pids+=($!)
  split_await "$name" $! "$dir/log" split_served_url "$dir/log"
}

# split_terminator NAME ALLOWED_CN UPSTREAM: nginx from the shared template
# on a free port; sets split_url to its https URL.
split_terminator() {
  local name=$1 allowed=$2 upstream=$3
  local dir=$split_work/$name port
  port=$(split_free_port)
  mkdir -p "$dir"
  cat > "$dir/values.env" <<VALUES
LISTEN_PORT=127.0.0.1:$port
SERVER_NAME=localhost
SERVER_CERT=$split_work/tls/server.crt
SERVER_KEY=$split_work/tls/server.key
CLIENT_CA=$split_work/tls/ca.crt
ALLOWED_CLIENT_CN=$allowed
UPSTREAM=$upstream
VALUES
  # The template keeps its temporary files under /tmp (the pod's emptyDir);
  # here they go under this terminator's own directory.
  env/scripts/render-terminator.sh "$dir/values.env" |
    sed -E "s#(_path|pid) /tmp/#\1 $dir/#" > "$dir/nginx.conf"
  nginx -c "$dir/nginx.conf" -p "$dir" -g 'daemon off;' > "$dir/log" 2>&1 &
  split_pids+=($!)
  split_await "nginx for $name" $! "$dir/log" split_listening "$port"
}

# split_client_tls NAME COMPONENT: the caller's [[client_tls]] for the
# terminator on 127.0.0.1, as Terraform renders it for AKS
# (env/terraform/templates/client-tls.toml.tftpl); with
# split_connection_pooling=false, also Spin's switch that keeps no idle
# outbound connection.
split_client_tls() {
  local name=$1 component=$2
  mkdir -p "$split_work/$name"
  cat > "$split_work/$name/runtime-config.toml" <<TOML
[[client_tls]]
component_ids = ["$component"]
hosts = ["127.0.0.1"]
ca_use_webpki_roots = false
ca_roots_file = "../tls/ca.crt"
client_cert_file = "../tls/$component.crt"
client_private_key_file = "../tls/$component.key"
TOML
  if [ "${split_connection_pooling:-true}" = false ]; then
    # What a connection and a TLS handshake per request cost (bench-split).
    printf '\n[outbound_http]\nconnection_pooling = false\n' >> "$split_work/$name/runtime-config.toml"
  fi
}

split_start() { # WORK HOST_BIN ENV_FILE GATEWAY_LISTEN
  split_work=$1 split_host_bin=$2 split_env_file=$3
  declare -gA split_listen=([gateway]=$4)
  split_need_tools
  local root
  root=$(pwd)
  split_make_certs "$split_work/tls"
  local docstore audit_api patient_api
  split_host docstore "$root/split/local/docstore.toml"
  docstore=$split_url
  split_host audit-api "$root/split/audit-api.toml" "COSMOSENDPOINT=$docstore"
  audit_api=$split_url
  split_terminator audit-api-mtls patient-api "$audit_api"
  split_audit_mtls=$split_url
  split_client_tls patient-api patient-api
  split_host patient-api "$root/split/patient-api.toml" \
    "COSMOSENDPOINT=$docstore" "AUDITAPIURL=$split_audit_mtls"
  patient_api=$split_url
  split_terminator patient-api-mtls gateway "$patient_api"
  split_patient_mtls=$split_url
  split_client_tls gateway gateway
  split_host gateway "$root/split/gateway.toml" "PATIENTAPIURL=$split_patient_mtls"
  split_base_url=$split_url
  cat <<SUMMARY
split deployment on loopback (files and logs in $split_work):
  gateway      $split_base_url   (public)
  patient-api  $split_patient_mtls  (nginx, client certificate CN=gateway) -> $patient_api
  audit-api    $split_audit_mtls  (nginx, client certificate CN=patient-api) -> $audit_api
  docstore     $docstore   (local stand-in for Cosmos DB)
SUMMARY
}

# split_check_hops: each private service's terminator asked directly, not
# through the gateway, with the certificates an attacker inside the cluster
# might hold. Prints a line per check; fails if any answer is not the one
# expected. Each refusal must come from the right layer: nginx (its
# certificate problems) before a host key is ever looked at.
split_check_hops() {
  local tls=$split_work/tls failures=0
  (
    # A certificate for CN=gateway from a CA the terminators do not trust.
    umask 077
    mkdir -p "$split_work/stranger"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "$split_work/stranger/ca.key" -out "$split_work/stranger/ca.crt" \
      -subj "/CN=some other CA" -days 2 2>/dev/null
    split_cert "$split_work/stranger" gateway gateway
  )
  split_hop() { # WANT_STATUS WANT_TEXT WHAT URL [CURL_ARGS...]
    local want=$1 text=$2 what=$3 url=$4 body status
    shift 4
    body=$(curl -sS --max-time 10 --cacert "$tls/ca.crt" -w '\n%{http_code}' "$@" "$url/audit/verify" 2>&1) || true
    status=${body##*$'\n'}
    if [ "$status" = "$want" ] && [[ "$body" == *"$text"* ]]; then
      printf '  ok    %-70s %s\n' "$what" "$status"
    else
      printf '  FAIL  %-70s %s (wanted %s with %q)\n' "$what" "$status" "$want" "$text"
      failures=$((failures + 1))
    fi
  }
  local cert="$tls/gateway.crt" key="$tls/gateway.key"
  split_hop 401 "client certificate from the private CA" \
    "patient-api, no client certificate" "$split_patient_mtls"
  split_hop 401 "client certificate from the private CA" \
    "patient-api, CN=gateway from another CA" "$split_patient_mtls" \
    --cert "$split_work/stranger/gateway.crt" --key "$split_work/stranger/gateway.key"
  split_hop 403 "may not call this service" \
    "patient-api, CN=patient-api (not its caller)" "$split_patient_mtls" \
    --cert "$tls/patient-api.crt" --key "$tls/patient-api.key"
  split_hop 401 "host key is required" \
    "patient-api, CN=gateway, no host key (the second layer)" "$split_patient_mtls" \
    --cert "$cert" --key "$key"
  split_hop 401 "host key is not valid" \
    "patient-api, CN=gateway, a wrong host key" "$split_patient_mtls" \
    --cert "$cert" --key "$key" -H "x-functions-key: not-the-key"
  split_hop 401 "client certificate from the private CA" \
    "audit-api, no client certificate" "$split_audit_mtls"
  split_hop 403 "may not call this service" \
    "audit-api, CN=gateway (only patient-api may call it)" "$split_audit_mtls" \
    --cert "$cert" --key "$key"
  split_hop 401 "host key is required" \
    "audit-api, CN=patient-api, no host key (the second layer)" "$split_audit_mtls" \
    --cert "$tls/patient-api.crt" --key "$tls/patient-api.key"
  rm -rf "$split_work/stranger"
  [ "$failures" -eq 0 ]
}

split_stop() {
  local pid
  for pid in "${split_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${split_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  split_pids=()
}
