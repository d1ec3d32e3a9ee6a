/* Exported wrappers of DPDK's static inline functions: see shim.h. */
#include <stdio.h>

#include <rte_config.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_thash.h>

#include "shim.h"

uint16_t dtnet_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
				struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t dtnet_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
				struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

int dtnet_rte_pktmbuf_alloc_bulk(struct rte_mempool *pool,
				 struct rte_mbuf **mbufs, unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(pool, mbufs, count);
}

void dtnet_rte_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

char *dtnet_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

uint32_t dtnet_rte_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

const void *dtnet_rte_pktmbuf_read(const struct rte_mbuf *m, uint32_t off,
				   uint32_t len, void *buf)
{
	return rte_pktmbuf_read(m, off, len, buf);
}

uint16_t dtnet_rte_pktmbuf_data_room(struct rte_mempool *pool)
{
	return rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
}

int dtnet_rte_mbuf_rss_hash(const struct rte_mbuf *m, uint32_t *hash)
{
	if (!(m->ol_flags & RTE_MBUF_F_RX_RSS_HASH))
		return 0;
	*hash = m->hash.rss;
	return 1;
}

uint32_t dtnet_rte_mbuf_rx_cksum(const struct rte_mbuf *m)
{
	uint32_t out = 0;
	uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;

	if (ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
		out |= DTNET_RX_IP_CKSUM_GOOD;
	else if (ip == RTE_MBUF_F_RX_IP_CKSUM_BAD)
		out |= DTNET_RX_IP_CKSUM_BAD;
	if (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		out |= DTNET_RX_L4_CKSUM_GOOD;
	else if (l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		out |= DTNET_RX_L4_CKSUM_BAD;
	return out;
}

void dtnet_rte_mbuf_tx_offload(struct rte_mbuf *m, uint32_t request,
			       uint16_t l2_len, uint16_t l3_len,
			       uint16_t l4_len, uint16_t tso_segsz)
{
	uint64_t flags = 0;

	if (request & DTNET_TX_IPV4)
		flags |= RTE_MBUF_F_TX_IPV4;
	if (request & DTNET_TX_IPV6)
		flags |= RTE_MBUF_F_TX_IPV6;
	if (request & DTNET_TX_IP_CKSUM)
		flags |= RTE_MBUF_F_TX_IP_CKSUM;
	if (request & DTNET_TX_TCP_CKSUM)
		flags |= RTE_MBUF_F_TX_TCP_CKSUM;
	if (request & DTNET_TX_UDP_CKSUM)
		flags |= RTE_MBUF_F_TX_UDP_CKSUM;
	if (request & DTNET_TX_TCP_SEG)
		flags |= RTE_MBUF_F_TX_TCP_SEG;
	m->ol_flags |= flags;
	m->l2_len = l2_len;
	m->l3_len = l3_len;
	m->l4_len = l4_len;
	m->tso_segsz = tso_segsz;
}

uint16_t dtnet_rte_eth_tx_prepare(uint16_t port_id, uint16_t queue_id,
				  struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_prepare(port_id, queue_id, tx_pkts, nb_pkts);
}

int dtnet_rte_errno(void)
{
	return rte_errno;
}

uint32_t dtnet_rte_softrss(uint32_t *input_tuple, uint32_t input_len,
			   const uint8_t *rss_key)
{
	return rte_softrss(input_tuple, input_len, rss_key);
}

int dtnet_thash_gfni_available(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	return dtnet_thash_gfni_compiled() &&
	       __builtin_cpu_supports("gfni") &&
	       __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512dq") &&
	       __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("avx512vbmi");
#else
	return 0;
#endif
}

int dtnet_rte_log_to_stderr(void)
{
	return rte_openlog_stream(stderr);
}

void dtnet_stdio_flush(void)
{
	fflush(stdout);
	fflush(stderr);
}
