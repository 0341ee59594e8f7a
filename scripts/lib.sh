# Shared by the scripts: Debian packages ctdoctor needs, and a Swift toolchain on PATH.

# Build: the C libraries behind the CLinux, CZlib and CYAML system libraries (libmnl, zlib:
# gzip snapshots, libyaml: manifests), and libnetfilter_conntrack for the tests' reference decoder (CNetfilterConntrack).
# The tool: the rule listers diagnose runs (nftables' nft, iptables-save) and what the lab
# builds with (iproute2, iptables, procps' sysctl) — KernelIO's SystemProgram.
# Tests and lab: the tools the integration tests compare against and drive (TestSupport's
# TestProgram; a test checks both lists against this one with dpkg -S).
# Export tests: prometheus_client's exposition parser (for Debian's /usr/bin/python3) and
# Prometheus' own promtool (check metrics, the alerting rules' unit tests); the watch tests
# run a real prometheus and prometheus-node-exporter (textfile collector) scraping watch.
# Benchmark: GNU time (peak RSS of each contender). Release tarball: binutils (strip,
# readelf, objdump), libstdc++'s archive (linked in), xz-utils (the .tar.xz). Examples: jq.
# Least-privilege tests: strace.
CTDOCTOR_PACKAGES=(
  pkgconf libnetfilter-conntrack-dev libmnl-dev zlib1g-dev libyaml-dev
  iproute2 iptables nftables conntrack procps util-linux iputils-ping python3
  python3-prometheus-client groff-base
  time binutils libstdc++-12-dev xz-utils jq strace prometheus prometheus-node-exporter
)

# Installs whichever of the packages are missing; runs apt-get update only when needed
# (or always when CTDOCTOR_APT_UPDATE=1).
ensure_packages() {
  local missing=()
  for package in "${CTDOCTOR_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ] || [ "${CTDOCTOR_APT_UPDATE:-0}" = 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "ctdoctor: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
      return 1
    fi
    apt-get update -qq
    [ "${#missing[@]}" -gt 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  return 0
}

# Swift 6 must be installed already (swift.org toolchains are not in Debian 12).
ensure_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
      [ -x "$candidate/swift" ] && export PATH="$candidate:$PATH" && break
    done
  fi
  command -v swift >/dev/null 2>&1 || {
    echo "ctdoctor: no Swift toolchain on PATH; install Swift 6 from https://www.swift.org/install/linux/" >&2
    return 1
  }
}
