#!/usr/bin/env bash
# Creates everything the county of deploy/config needs, on one machine or in
# the compose volumes: the county CA and TLS certificates, the county's and
# every department's signing keys (0600), the departments' push
# certificates, and each department's log (`gongkai node init`).
#
# The configs (deploy/config/*.toml) must already be in $ETC. Nothing that
# exists is overwritten, so running it again is harmless.
#
#   sudo cp deploy/config/*.toml /etc/gongkai/ && sudo -u gongkai deploy/setup.sh
#
# Environment: GONGKAI (the binary, default `gongkai`), ETC (default
# /etc/gongkai), DEPARTMENTS (default "finance education civil-affairs"),
# DOMAIN (default gongkai.example/510122), HOSTS (extra server names,
# default "localhost 127.0.0.1").
set -euo pipefail
G=${GONGKAI:-gongkai}
ETC=${ETC:-/etc/gongkai}
DEPARTMENTS=${DEPARTMENTS:-finance education civil-affairs}
DOMAIN=${DOMAIN:-gongkai.example/510122}
HOSTS=${HOSTS:-localhost 127.0.0.1}

mkdir -p "$ETC/keys" "$ETC/tls"
chmod 0700 "$ETC/keys"

hosts() { for h in "$1" $HOSTS; do printf -- '--host %s ' "$h"; done; }

[ -e "$ETC/tls/ca.crt" ] || $G certs ca --out "$ETC/tls" --name "gongkai county CA"
[ -e "$ETC/tls/county.crt" ] || $G certs server --ca "$ETC/tls" $(hosts county) --out "$ETC/tls/county"
[ -e "$ETC/keys/county-log.key" ] || $G keygen --name "$DOMAIN/county" --out "$ETC/keys/county-log.key"
[ -e "$ETC/keys/county-witness.key" ] || $G keygen --cosigner --name "$DOMAIN/county-witness" --out "$ETC/keys/county-witness.key"

for d in $DEPARTMENTS; do
    [ -e "$ETC/keys/$d.key" ] || $G keygen --name "$DOMAIN/$d" --out "$ETC/keys/$d.key"
    [ -e "$ETC/tls/$d.crt" ] || $G certs server --ca "$ETC/tls" $(hosts "$d") --out "$ETC/tls/$d"
    [ -e "$ETC/tls/$d-push.crt" ] || $G certs client --ca "$ETC/tls" --name "$DOMAIN/$d" --out "$ETC/tls/$d-push"
    data_dir=$(sed -n 's/^data_dir = "\(.*\)"$/\1/p' "$ETC/$d.toml")
    [ -e "$data_dir/journal" ] || $G node init --config "$ETC/$d.toml"
done
$G aggregator --config "$ETC/county.toml" --check
echo "county ready: start the aggregator and the nodes (systemd units or compose)"
