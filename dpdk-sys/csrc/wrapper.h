/* What bindgen reads: the DPDK APIs dtnet uses, and the shims. */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_thash.h>

#include "shim.h"

/* Values of DPDK macros that bindgen cannot evaluate (RTE_BIT64, sums). */
enum dtnet_consts {
	DTNET_RSS_IPV4 = RTE_ETH_RSS_IPV4,
	DTNET_RSS_NONFRAG_IPV4_TCP = RTE_ETH_RSS_NONFRAG_IPV4_TCP,
	DTNET_RSS_NONFRAG_IPV4_UDP = RTE_ETH_RSS_NONFRAG_IPV4_UDP,
	DTNET_RSS_IPV6 = RTE_ETH_RSS_IPV6,
	DTNET_RSS_NONFRAG_IPV6_TCP = RTE_ETH_RSS_NONFRAG_IPV6_TCP,
	DTNET_RSS_NONFRAG_IPV6_UDP = RTE_ETH_RSS_NONFRAG_IPV6_UDP,
	DTNET_RETA_GROUP_SIZE = RTE_ETH_RETA_GROUP_SIZE,
	DTNET_PKTMBUF_HEADROOM = RTE_PKTMBUF_HEADROOM,
	DTNET_ETH_MAX_PORTS = RTE_MAX_ETHPORTS,
	DTNET_LINK_UP = RTE_ETH_LINK_UP,
	DTNET_LINK_FULL_DUPLEX = RTE_ETH_LINK_FULL_DUPLEX,
	DTNET_SOCKET_ID_ANY = SOCKET_ID_ANY,
	DTNET_RING_F_SP_ENQ = RING_F_SP_ENQ,
	DTNET_RING_F_SC_DEQ = RING_F_SC_DEQ,
	DTNET_ENODEV = ENODEV,
};
