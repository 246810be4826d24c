#!/bin/sh
# The balancer image's entrypoint (deploy/balancer/Containerfile). Kubernetes pods come and go,
# so replicas are found by name per request through the cluster's DNS: this writes site.conf with
# the pod's resolver and its search domain (<namespace>.svc.<cluster domain>, where the headless
# Service airlock-replicas lives), then runs nginx on a writable copy of the config.
set -eu
# AIRLOCK_BALANCER_CHECK=1 checks the config (nginx -t) instead of serving; the other variables
# let a test run this outside the image.
conf=${AIRLOCK_BALANCER_CONF:-/etc/airlock/balancer}
run=${AIRLOCK_BALANCER_RUN:-/tmp/nginx}
resolv=${AIRLOCK_BALANCER_RESOLV_CONF:-/etc/resolv.conf}
mkdir -p "$run/conf"
cp "$conf"/*.conf "$run/conf/"
nameserver=$(awk '$1 == "nameserver" { print $2; exit }' "$resolv")
domain=$(awk '$1 == "search" { print $2; exit }' "$resolv")
[ -n "$nameserver" ] || { echo "airlock-balancer: no nameserver in $resolv" >&2; exit 1; }
[ -n "$domain" ] || { echo "airlock-balancer: no search domain in $resolv" >&2; exit 1; }
# An IPv4 resolver: A records only. An IPv6 one (an IPv6 cluster): AAAA as well.
ipv6=off
case $nameserver in *:*) nameserver="[$nameserver]" ipv6=on ;; esac
# valid=5s: no longer than the cluster DNS's own TTL, so a pod's old address is soon forgotten.
cat > "$run/conf/site.conf" <<SITE
resolver $nameserver valid=5s ipv6=$ipv6;
map "" \$airlock_service_domain { default "$domain"; }
SITE
exec nginx ${AIRLOCK_BALANCER_CHECK:+-t} -e stderr -p "$run/" -c "$run/conf/nginx.conf" \
  -g "daemon off; worker_processes ${AIRLOCK_BALANCER_WORKERS:-2};"
