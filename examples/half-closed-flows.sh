#!/bin/sh
# Half-closed flows through an Istio/ASM sidecar, and the proxy sockets they leave.
#
# When an upstream closes first, the sidecar forwards the FIN to the app with
# shutdown(SHUT_WR): its socket on the outbound capture port (15001) sits in FIN_WAIT2
# and conntrack holds the flow in CLOSE_WAIT until nf_conntrack_tcp_timeout_close_wait.
# A FIN_WAIT2 socket on 15001 whose flow is gone from conntrack is leaked.
#
# Usage: half-closed-flows.sh [NETNS]     (NETNS: a name, a path or a PID; default: this one)
set -eu
if [ $# -gt 0 ]; then set -- --netns "$1"; fi
echo "Flows captured by the outbound listener, half-closed (conntrack CLOSE_WAIT):"
ctdoctor conntrack "$@" --reply-src-port 15001 --state CLOSE_WAIT
echo
echo "Proxy sockets in FIN_WAIT2 on 15001:"
ctdoctor sockets "$@" --state FIN_WAIT2 --port 15001 --processes
