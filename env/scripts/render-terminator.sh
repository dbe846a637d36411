#!/usr/bin/env bash
# Renders the nginx mTLS terminator config for one private service of the
# split deployment and prints it on stdout:
#
#   env/scripts/render-terminator.sh env/k8s/split/terminators/patient-api.env \
#     | kubectl -n patient-records create configmap patient-records-patient-api-mtls \
#         --from-file=nginx.conf=/dev/stdin --dry-run=client -o yaml | kubectl apply -f -
#
# The template (env/mtls/terminator.conf.template, or TEMPLATE) is the one
# source of truth shared with the local test host. Its ${UPPER_CASE}
# placeholders are substituted with envsubst given exactly that list, so
# nginx's own $variables survive. The values file (NAME=value lines, # for
# comments) must define exactly the template's placeholders: a missing or an
# unused name is an error, not a silently empty directive.

set -euo pipefail

usage() { printf 'usage: %s VALUES_FILE [TEMPLATE]\n' "${0##*/}" >&2; exit 2; }
die() { printf 'render-terminator: %s\n' "$*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || usage
values=$1
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
template=${2:-$here/../mtls/terminator.conf.template}

[[ -f "$values" ]] || die "no values file $values"
[[ -f "$template" ]] || die "no template $template"
command -v envsubst >/dev/null || die "envsubst not found (gettext-base)"

# shellcheck disable=SC2016 # literal \${...}: the placeholders, not expansions
mapfile -t wanted < <(grep -o '\${[A-Z][A-Z0-9_]*}' "$template" | sort -u | sed 's/^\${\(.*\)}$/\1/')
[[ ${#wanted[@]} -gt 0 ]] || die "$template has no \${UPPER_CASE} placeholders"

declare -A given=()
while IFS= read -r line || [[ -n "$line" ]]; do
  [[ -z "${line//[[:space:]]/}" || "$line" == \#* ]] && continue
  [[ "$line" =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]] || die "$values: not NAME=value: $line"
  name=${BASH_REMATCH[1]}
  [[ -z "${given[$name]+x}" ]] || die "$values: $name set twice"
  [[ -n "${BASH_REMATCH[2]}" ]] || die "$values: $name is empty"
  given[$name]=${BASH_REMATCH[2]}
done <"$values"

for name in "${wanted[@]}"; do
  [[ -n "${given[$name]+x}" ]] || die "$values does not set $name (used by $template)"
done
for name in "${!given[@]}"; do
  printf '%s\n' "${wanted[@]}" | grep -qx -- "$name" || die "$values sets $name, which $template does not use"
done

# shellcheck disable=SC2016 # envsubst's SHELL-FORMAT list, literal on purpose
list=$(printf '${%s} ' "${wanted[@]}")
for name in "${wanted[@]}"; do
  export "$name=${given[$name]}"
done
envsubst "$list" <"$template"
