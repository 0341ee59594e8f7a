// libnetfilter_conntrack, the C library conntrack-tools uses: the tests' reference
// decoder for ctnetlink messages (TestSupport's ReferenceConntrackDecoder). The product
// does not link it.
#ifndef CTDOCTOR_CNETFILTERCONNTRACK_SHIM_H
#define CTDOCTOR_CNETFILTERCONNTRACK_SHIM_H

#include <stdint.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#endif
