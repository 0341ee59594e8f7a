#!/usr/bin/env bash
# For a node debugging session: which pods on this node have sidecar sockets leaked in
# FIN_WAIT2, on which of the app's ports, and for how long yet — from one sweep of every
# network namespace, as JSON through jq. Run as root on the node (or in
# `kubectl debug node/NODE --profile=sysadmin` with hostPID).
#
# Prints one tab-separated line per leaked socket (pod or namespace, proxy socket, the
# app's poisoned port, idle seconds, seconds until the proxy's idle timeout reaps it),
# then each affected namespace's fix. Exit status: 0 no leaks, 1 leaks, 2 ctdoctor
# could not run (its one-line error is on standard error).
set -uo pipefail

report=$(ctdoctor diagnose --all-netns --format json --fail-on never)
status=$?
if [ "$status" -ne 0 ]; then
  echo "leaking-pods: ctdoctor diagnose failed with exit status $status" >&2
  exit 2
fi
jq -r '.notices[] | "leaking-pods: note: " + .' <<<"$report" >&2

leaks=$(jq -r '
  .namespaces[] as $ns
  | ($ns.diagnosis.leaks // [])[]
  | select(.class == "leaked")
  | [ ($ns.pod // $ns.netns_name // $ns.netns),
      "\(.socket.local.address):\(.socket.local.port)",
      "\(.socket.peer.address):\(.socket.peer.port)",
      ((.idle_ms // 0) / 1000 | floor),
      (if .reaped_in_ms == null then "never" else (.reaped_in_ms / 1000 | floor) end) ]
  | @tsv' <<<"$report")

if [ -z "$leaks" ]; then
  echo "no leaked sidecar sockets in $(jq '.summary.namespaces' <<<"$report") network namespaces"
  exit 0
fi
printf 'pod\tproxy socket\tapp port (poisoned)\tidle s\treaped in s\n%s\n\n' "$leaks"
jq -r '
  .namespaces[]
  | select(any(.diagnosis.findings[]?; .id == "leaked-sockets"))
  | "fix for \(.pod // .netns_name // .netns): \(.diagnosis.findings[] | select(.id == "leaked-sockets") | .remedy)"' <<<"$report"
exit 1
