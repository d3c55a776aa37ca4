#!/usr/bin/env bash
# Creates everything the county of deploy/config needs, on one machine or in
# the compose volumes: the county CA and TLS certificates, the county's and
# every department's signing keys (0600), the departments' push
# certificates, each department's log (`gongkai node init`), and installs
# the configs.
#
# Layout: one directory per service holding everything secret of it, and
# one of public material every service may read; a service is given its
# own directory and `public/` only (systemd units and compose mounts), so a
# department's node cannot read another department's keys.
#
#   $ETC/ca/            ca.crt, ca.key: the county CA (keep ca.key offline)
#   $ETC/public/        ca.crt, <department>.vkey, county-log.vkey, county-witness.vkey
#   $ETC/county/        county.toml, log.key, witness.key, tls.crt, tls.key
#   $ETC/<department>/  node.toml, signing.key (+ .state), tls.crt, tls.key, push.crt, push.key
#
# Nothing that exists is overwritten, so running it again is harmless.
#
#   sudo -u gongkai deploy/setup.sh
#
# Environment: GONGKAI (the binary, default `gongkai`), ETC (default
# /etc/gongkai), CONFIG (the configs to install, default deploy/config),
# DEPARTMENTS (default "finance education civil-affairs"), DOMAIN (default
# gongkai.example/510122), HOSTS (extra server names, default "localhost
# 127.0.0.1").
set -euo pipefail
G=${GONGKAI:-gongkai}
ETC=${ETC:-/etc/gongkai}
CONFIG=${CONFIG:-$(dirname "$0")/config}
DEPARTMENTS=${DEPARTMENTS:-finance education civil-affairs}
DOMAIN=${DOMAIN:-gongkai.example/510122}
HOSTS=${HOSTS:-localhost 127.0.0.1}

umask 077
mkdir -p "$ETC/ca" "$ETC/public" "$ETC/county"
chmod 0755 "$ETC/public"
chmod 0700 "$ETC/ca" "$ETC/county"

hosts() { for h in "$1" $HOSTS; do printf -- '--host %s ' "$h"; done; }
public() { install -m 0644 "$1" "$ETC/public/$2"; }

[ -e "$ETC/ca/ca.crt" ] || $G certs ca --out "$ETC/ca" --name "gongkai county CA"
[ -e "$ETC/public/ca.crt" ] || public "$ETC/ca/ca.crt" ca.crt
[ -e "$ETC/county/county.toml" ] || install -m 0600 "$CONFIG/county.toml" "$ETC/county/county.toml"
[ -e "$ETC/county/tls.crt" ] || $G certs server --ca "$ETC/ca" $(hosts county) --out "$ETC/county/tls"
[ -e "$ETC/county/log.key" ] || $G keygen --name "$DOMAIN/county" --out "$ETC/county/log.key"
[ -e "$ETC/county/witness.key" ] || $G keygen --cosigner --name "$DOMAIN/county-witness" --out "$ETC/county/witness.key"
[ -e "$ETC/public/county-log.vkey" ] || public "$ETC/county/log.key.vkey" county-log.vkey
[ -e "$ETC/public/county-witness.vkey" ] || public "$ETC/county/witness.key.vkey" county-witness.vkey

for d in $DEPARTMENTS; do
    mkdir -p "$ETC/$d"
    chmod 0700 "$ETC/$d"
    [ -e "$ETC/$d/node.toml" ] || install -m 0600 "$CONFIG/$d.toml" "$ETC/$d/node.toml"
    [ -e "$ETC/$d/signing.key" ] || $G keygen --name "$DOMAIN/$d" --out "$ETC/$d/signing.key"
    [ -e "$ETC/public/$d.vkey" ] || public "$ETC/$d/signing.key.vkey" "$d.vkey"
    [ -e "$ETC/$d/tls.crt" ] || $G certs server --ca "$ETC/ca" $(hosts "$d") --out "$ETC/$d/tls"
    [ -e "$ETC/$d/push.crt" ] || $G certs client --ca "$ETC/ca" --name "$DOMAIN/$d" --out "$ETC/$d/push"
    data_dir=$(sed -n 's/^data_dir = "\(.*\)"$/\1/p' "$ETC/$d/node.toml")
    [ -e "$data_dir/journal" ] || $G node init --config "$ETC/$d/node.toml"
done
$G aggregator --config "$ETC/county/county.toml" --check
echo "county ready: start the aggregator and the nodes (systemd units or compose)"
