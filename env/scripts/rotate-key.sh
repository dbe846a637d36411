#!/usr/bin/env bash
# Zero-downtime rotation of the keys the patient-records app reads from Key
# Vault (one secret per Spin variable, env/terraform/secrets.tf).
#
#   rotate-key.sh [common options] host-key patientapi|auditapi [--strategy keep|switch-back]
#   rotate-key.sh [common options] subscription NAME --slot primary|secondary --key-out FILE
#   rotate-key.sh [common options] cosmos --cosmos-account NAME --resource-group RG
#
# Common options:
#   --vault NAME           Key Vault name (terraform output key_vault_name). Required.
#   --namespace NS         Namespace of the app (default patient-records).
#   --rollout D1[,D2...]   Deployments to restart after each change so every pod
#                          reads the new values (spin-operator names them after
#                          the SpinApps: patient-records, or patient-records-gateway,
#                          ...-patient-api, ...-audit-api in the split deployment).
#   --pickup-wait SECONDS  Without --rollout: how long to wait for pods to pick up a
#                          change on their own (default 300).
#   --dry-run              Read the current state, print every step, change nothing.
#
# Host keys (patientapi, auditapi). The service accepts two keys,
# <svc>primarykey and <svc>secondarykey; callers send <svc>apikey, which always
# equals one of them (the "active" slot; the other is "standby"):
#   1. write a new key into the standby slot       -> both old and new accepted
#   2. wait for pickup
#   3. switch callers: <svc>apikey = the new key   -> callers use the new key
#   4. wait for pickup
#   5. overwrite the formerly active slot with a fresh, never-used key
#                                                  -> the old key is revoked
#   6. wait for pickup
# At every moment each caller sends a key every service instance accepts, as
# long as every step is picked up before the next (hence the waits).
# --strategy keep (default) stops there: callers stay on the other slot and the
# next rotation starts from it, so slots alternate. --strategy switch-back
# continues until callers are back on the primary slot (three more writes and
# pickups): only worth it if something outside this app assumes "primary is in
# use".
#
# Subscription keys (gateway). Key Vault holds only SHA-256 digests
# (secret `subscriptions`); the raw keys are with the subscriber. Rotate one
# slot per run, the one the subscriber is NOT using:
#   run 1: --slot secondary  -> new secondary key written to --key-out (mode
#          600); hand it over; the subscriber switches to it; the old primary
#          still works meanwhile
#   run 2: --slot primary    -> the old primary is revoked; hand the new
#          primary over as the standby key
# The new raw key is never printed: only the file gets it.
#
# Cosmos DB keys. The account has a primary and a secondary master key; the
# app signs with the one in secret `cosmoskey`:
#   1. regenerate the master key the app does NOT use
#   2. cosmoskey = that new key; wait for pickup
#   3. regenerate the key the app used before -> the old key is revoked
# Slots alternate between rotations (like --strategy keep).
#
# Needs: az (logged in, Key Vault Secrets Officer on the vault; for cosmos also
# Cosmos DB account key rights), python3, and kubectl for --rollout.
# Secret values travel through variables, stdin and 0600 files only: never
# through command-line arguments, never to the terminal or a log.

set -euo pipefail

readonly PROG=${0##*/}
readonly SECRET_LIFETIME_DAYS=365

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 2; }
say() { printf '%s: %s\n' "$PROG" "$*"; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
  exit "${1:-0}"
}

VAULT=""
NAMESPACE="patient-records"
ROLLOUTS=""
PICKUP_WAIT=300
DRY_RUN=false
MODE=""
TARGET=""
STRATEGY="keep"
SLOT=""
KEY_OUT=""
COSMOS_ACCOUNT=""
RESOURCE_GROUP=""

need_value() { [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --vault) need_value "$@"; VAULT=$2; shift 2 ;;
    --namespace) need_value "$@"; NAMESPACE=$2; shift 2 ;;
    --rollout) need_value "$@"; ROLLOUTS=$2; shift 2 ;;
    --pickup-wait) need_value "$@"; PICKUP_WAIT=$2; shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    --strategy) need_value "$@"; STRATEGY=$2; shift 2 ;;
    --slot) need_value "$@"; SLOT=$2; shift 2 ;;
    --key-out) need_value "$@"; KEY_OUT=$2; shift 2 ;;
    --cosmos-account) need_value "$@"; COSMOS_ACCOUNT=$2; shift 2 ;;
    --resource-group) need_value "$@"; RESOURCE_GROUP=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    host-key|subscription)
      [[ -z "$MODE" ]] || die "only one of host-key, subscription, cosmos"
      [[ $# -ge 2 ]] || die "$1 needs a name"
      MODE=$1; TARGET=$2; shift 2 ;;
    cosmos)
      [[ -z "$MODE" ]] || die "only one of host-key, subscription, cosmos"
      MODE=cosmos; shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ -n "$MODE" ]] || { printf '%s: error: say what to rotate\n\n' "$PROG" >&2; usage 2; }
[[ -n "$VAULT" ]] || die "--vault is required"
[[ "$VAULT" =~ ^[A-Za-z0-9-]{3,24}$ ]] || die "--vault '$VAULT' is not a Key Vault name"
[[ "$NAMESPACE" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "--namespace '$NAMESPACE' is not a namespace name"
[[ "$PICKUP_WAIT" =~ ^[0-9]+$ ]] || die "--pickup-wait must be a number of seconds"
if [[ -n "$ROLLOUTS" && ! "$ROLLOUTS" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(,[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ ]]; then
  die "--rollout must be a comma-separated list of Deployment names"
fi

case "$MODE" in
  host-key)
    [[ "$TARGET" == patientapi || "$TARGET" == auditapi ]] || die "host-key takes patientapi or auditapi, not '$TARGET'"
    [[ "$STRATEGY" == keep || "$STRATEGY" == switch-back ]] || die "--strategy is keep or switch-back"
    ;;
  subscription)
    [[ "$TARGET" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "'$TARGET' is not a subscription name"
    [[ "$SLOT" == primary || "$SLOT" == secondary ]] || die "subscription needs --slot primary or --slot secondary"
    if ! $DRY_RUN; then
      [[ -n "$KEY_OUT" ]] || die "subscription needs --key-out FILE: the new key is written there, never printed"
      [[ ! -e "$KEY_OUT" ]] || die "--key-out $KEY_OUT already exists; refusing to overwrite a key file"
      [[ -d "$(dirname -- "$KEY_OUT")" ]] || die "--key-out: directory $(dirname -- "$KEY_OUT") does not exist"
    fi
    ;;
  cosmos)
    [[ -n "$COSMOS_ACCOUNT" ]] || die "cosmos needs --cosmos-account"
    [[ -n "$RESOURCE_GROUP" ]] || die "cosmos needs --resource-group"
    ;;
esac

command -v az >/dev/null || die "az (Azure CLI) not found"
command -v python3 >/dev/null || die "python3 not found"
if [[ -n "$ROLLOUTS" ]] && ! $DRY_RUN; then
  command -v kubectl >/dev/null || die "kubectl not found (needed for --rollout)"
fi

# Private scratch space for values on their way to az (--file, never --value).
umask 077
WORK=$(mktemp -d)
trap 'rm -rf -- "$WORK"' EXIT

# --- small helpers; none prints a secret ---------------------------------------

# A new random key: 48 hex characters (like Terraform's 48-character keys).
new_key() { python3 -c 'import secrets; print(secrets.token_hex(24), end="")'; }

# Whether two values are equal, without putting either on a command line.
same() {
  printf '%s\0%s' "$1" "$2" | python3 -c '
import hmac, sys
a, b = sys.stdin.buffer.read().split(b"\0", 1)
sys.exit(0 if hmac.compare_digest(a, b) else 1)'
}

kv_get() {
  az keyvault secret show --vault-name "$VAULT" --name "$1" --query value --output tsv --only-show-errors
}

expiry() {
  python3 -c "
import datetime
t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=$SECRET_LIFETIME_DAYS)
print(t.strftime('%Y-%m-%dT%H:%M:%SZ'), end='')"
}

# kv_set NAME VALUE WHAT: WHAT describes the change for humans.
kv_set() {
  local name=$1 value=$2 what=$3
  if $DRY_RUN; then
    say "[dry-run] would set secret '$name' ($what)"
    return 0
  fi
  local file="$WORK/value"
  printf '%s' "$value" >"$file"
  az keyvault secret set --vault-name "$VAULT" --name "$name" --file "$file" --encoding utf-8 \
    --expires "$(expiry)" --output none --only-show-errors
  rm -f -- "$file"
  say "set secret '$name' ($what)"
}

await_pickup() {
  local why=$1
  if $DRY_RUN; then
    if [[ -n "$ROLLOUTS" ]]; then
      say "[dry-run] would restart and wait for deployment(s) $ROLLOUTS in $NAMESPACE ($why)"
    else
      say "[dry-run] would wait ${PICKUP_WAIT}s for pods to pick up: $why"
    fi
    return 0
  fi
  if [[ -n "$ROLLOUTS" ]]; then
    local d
    IFS=',' read -r -a deployments <<<"$ROLLOUTS"
    for d in "${deployments[@]}"; do
      kubectl --namespace "$NAMESPACE" rollout restart "deployment/$d" >/dev/null
    done
    for d in "${deployments[@]}"; do
      kubectl --namespace "$NAMESPACE" rollout status "deployment/$d" --timeout=15m >/dev/null
    done
    say "pods restarted and ready ($why)"
  else
    say "waiting ${PICKUP_WAIT}s for pods to pick up: $why"
    sleep "$PICKUP_WAIT"
  fi
}

# --- host keys --------------------------------------------------------------------

rotate_host_key() {
  local svc=$1
  local primary_name="${svc}primarykey" secondary_name="${svc}secondarykey" caller_name="${svc}key"
  local primary secondary caller active standby
  primary=$(kv_get "$primary_name")
  secondary=$(kv_get "$secondary_name")
  caller=$(kv_get "$caller_name")
  [[ -n "$primary" && -n "$secondary" && -n "$caller" ]] || die "a $svc key secret is empty"

  if same "$caller" "$primary"; then
    active=primary; standby=secondary
  elif same "$caller" "$secondary"; then
    active=secondary; standby=primary
  else
    die "'$caller_name' matches neither '$primary_name' nor '$secondary_name': callers are already failing; fix that first (no change made)"
  fi
  if same "$primary" "$secondary"; then
    die "'$primary_name' and '$secondary_name' are equal; set a distinct standby key first (no change made)"
  fi
  say "$svc: callers use the $active slot; rotating through the $standby slot (strategy $STRATEGY)"

  local fresh
  fresh=$(new_key)
  kv_set "${svc}${standby}key" "$fresh" "new key in the standby slot; old and new both accepted"
  await_pickup "new $standby key accepted"
  kv_set "$caller_name" "$fresh" "callers switch to the $standby slot"
  await_pickup "callers use the $standby slot"
  kv_set "${svc}${active}key" "$(new_key)" "old key revoked: fresh unused key in the $active slot"
  await_pickup "old key no longer accepted"

  if [[ "$STRATEGY" == switch-back && "$active" == primary ]]; then
    local back
    back=$(new_key)
    kv_set "$primary_name" "$back" "new key in the primary slot"
    await_pickup "new primary key accepted"
    kv_set "$caller_name" "$back" "callers switch back to the primary slot"
    await_pickup "callers use the primary slot"
    kv_set "$secondary_name" "$(new_key)" "fresh unused key in the secondary slot"
    await_pickup "secondary slot refreshed"
    say "$svc: done; callers on the primary slot, no earlier key is accepted"
  else
    say "$svc: done; callers on the $standby slot, the previous key is revoked"
  fi
}

# --- gateway subscriptions -----------------------------------------------------

rotate_subscription() {
  local name=$1 slot=$2
  local doc fresh updated
  doc=$(kv_get subscriptions)
  fresh=$(new_key)
  # The JSON document and the new key go in on stdin; the updated document
  # comes out on stdout. Errors name the subscription, never a value.
  updated=$(printf '%s\0%s' "$doc" "$fresh" | SUB_NAME="$name" SUB_SLOT="$slot" python3 -c '
import hashlib, json, os, sys
raw = sys.stdin.buffer.read()
doc, key = raw.split(b"\0", 1)
name, slot = os.environ["SUB_NAME"], os.environ["SUB_SLOT"]
try:
    subs = json.loads(doc)
except ValueError:
    sys.exit("secret subscriptions is not valid JSON")
if not isinstance(subs, list):
    sys.exit("secret subscriptions is not a JSON array")
field = slot + "KeySha256"
other = ("secondary" if slot == "primary" else "primary") + "KeySha256"
matches = [s for s in subs if isinstance(s, dict) and s.get("name") == name]
if len(matches) != 1:
    sys.exit("no single subscription named %r in secret subscriptions" % name)
digest = hashlib.sha256(key).hexdigest()
if digest == matches[0].get(other):
    sys.exit("generated key equals the other slot; run again")
matches[0][field] = digest
sys.stdout.write(json.dumps(subs, separators=(",", ":")))
') || die "could not update subscription '$name' (no change made)"

  say "subscription '$name': replacing the $slot key (the other slot keeps working)"
  if ! $DRY_RUN; then
    # Hand-over file first: if writing it fails, nothing has changed yet.
    (umask 077 && printf '%s\n' "$fresh" >"$KEY_OUT")
    say "new $slot key written to $KEY_OUT (mode 600); hand it over securely, then delete it"
  fi
  kv_set subscriptions "$updated" "new digest for the $slot key of '$name'"
  await_pickup "gateway accepts the new $slot key of '$name'"
  say "subscription '$name': done. The subscriber switches to the new $slot key; rotate the other slot once it has."
}

# --- Cosmos DB master keys -------------------------------------------------------

cosmos_key() {
  az cosmosdb keys list --name "$COSMOS_ACCOUNT" --resource-group "$RESOURCE_GROUP" --type keys \
    --query "${1}MasterKey" --output tsv --only-show-errors
}

cosmos_regenerate() {
  local kind=$1 what=$2
  if $DRY_RUN; then
    say "[dry-run] would regenerate the $kind master key of $COSMOS_ACCOUNT ($what)"
    return 0
  fi
  az cosmosdb keys regenerate --name "$COSMOS_ACCOUNT" --resource-group "$RESOURCE_GROUP" \
    --key-kind "$kind" --output none --only-show-errors
  say "regenerated the $kind master key of $COSMOS_ACCOUNT ($what)"
}

rotate_cosmos() {
  local in_use primary secondary active standby
  in_use=$(kv_get cosmoskey)
  primary=$(cosmos_key primary)
  secondary=$(cosmos_key secondary)
  if same "$in_use" "$primary"; then
    active=primary; standby=secondary
  elif same "$in_use" "$secondary"; then
    active=secondary; standby=primary
  else
    die "secret cosmoskey matches neither master key of $COSMOS_ACCOUNT: the app cannot reach Cosmos DB now; fix that first (no change made)"
  fi
  say "cosmos: the app signs with the $active key; rotating through the $standby key"

  cosmos_regenerate "$standby" "the app does not use it"
  local fresh
  if $DRY_RUN; then
    fresh=$standby
  else
    fresh=$(cosmos_key "$standby")
    [[ -n "$fresh" ]] || die "could not read the regenerated $standby key"
  fi
  kv_set cosmoskey "$fresh" "the app switches to the new $standby key"
  await_pickup "the app signs with the $standby key"
  cosmos_regenerate "$active" "old key revoked"
  say "cosmos: done; the app uses the $standby key, the previous key is revoked"
}

$DRY_RUN && say "dry run: reading the current state only, changing nothing"
case "$MODE" in
  host-key) rotate_host_key "$TARGET" ;;
  subscription) rotate_subscription "$TARGET" "$SLOT" ;;
  cosmos) rotate_cosmos ;;
esac
