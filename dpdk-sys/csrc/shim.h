/*
 * dtnet's C shims for DPDK 22.11: DPDK implements its fast-path functions
 * as `static inline` in headers, which bindgen cannot bind, so each one used
 * from Rust gets an exported wrapper here (shim.c), plus the GFNI bulk
 * Toeplitz hash in its own unit (gfni.c, compiled with GFNI and AVX-512).
 */
#ifndef DTNET_DPDK_SHIM_H
#define DTNET_DPDK_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

uint16_t dtnet_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
				struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t dtnet_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
				struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
int dtnet_rte_pktmbuf_alloc_bulk(struct rte_mempool *pool,
				 struct rte_mbuf **mbufs, unsigned int count);
void dtnet_rte_pktmbuf_free(struct rte_mbuf *m);
/* Appends `len` bytes to the last segment; NULL if they do not fit. */
char *dtnet_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
/* Total frame length over all segments. */
uint32_t dtnet_rte_pktmbuf_pkt_len(const struct rte_mbuf *m);
/* Bytes [off, off+len) of the frame: a pointer into the mbuf when they are
 * contiguous, else copied into `buf`; NULL if out of range. */
const void *dtnet_rte_pktmbuf_read(const struct rte_mbuf *m, uint32_t off,
				   uint32_t len, void *buf);
/* Tailroom of a fresh mbuf of `pool`: the longest frame one segment holds. */
uint16_t dtnet_rte_pktmbuf_data_room(struct rte_mempool *pool);
/* 1 and the RSS hash in *hash if the device set RTE_MBUF_F_RX_RSS_HASH. */
int dtnet_rte_mbuf_rss_hash(const struct rte_mbuf *m, uint32_t *hash);
/* Checksum results of a received mbuf, as dtnet's own bits (DPDK's
 * RTE_MBUF_F_RX_* values are 64-bit and bindgen-unfriendly). */
enum dtnet_rx_cksum {
	DTNET_RX_IP_CKSUM_GOOD = 1,
	DTNET_RX_IP_CKSUM_BAD = 2,
	DTNET_RX_L4_CKSUM_GOOD = 4,
	DTNET_RX_L4_CKSUM_BAD = 8,
};
/* The checksum verdicts the device put in `m` (dtnet_rx_cksum bits). */
uint32_t dtnet_rte_mbuf_rx_cksum(const struct rte_mbuf *m);

/* Transmit offload requests, as dtnet's own bits. */
enum dtnet_tx_request {
	DTNET_TX_IPV4 = 1,
	DTNET_TX_IPV6 = 2,
	DTNET_TX_IP_CKSUM = 4,
	DTNET_TX_TCP_CKSUM = 8,
	DTNET_TX_UDP_CKSUM = 16,
	DTNET_TX_TCP_SEG = 32,
};
/* Sets the RTE_MBUF_F_TX_* flags `request` (dtnet_tx_request bits) asks
 * for and the header lengths and segment size the device needs. */
void dtnet_rte_mbuf_tx_offload(struct rte_mbuf *m, uint32_t request,
			       uint16_t l2_len, uint16_t l3_len,
			       uint16_t l4_len, uint16_t tso_segsz);
/* rte_eth_tx_prepare: the driver's fix-ups (pseudo-header checksums) for
 * offloads; returns how many leading mbufs are ready. */
uint16_t dtnet_rte_eth_tx_prepare(uint16_t port_id, uint16_t queue_id,
				  struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
/* The calling thread's rte_errno (a thread-local bindgen cannot reach). */
int dtnet_rte_errno(void);

uint32_t dtnet_rte_softrss(uint32_t *input_tuple, uint32_t input_len,
			   const uint8_t *rss_key);

/* 1 if rte_thash_gfni_bulk was compiled in and this CPU runs it. */
int dtnet_thash_gfni_available(void);
/* rte_thash_gfni_bulk; only call when dtnet_thash_gfni_available(). */
void dtnet_rte_thash_gfni_bulk(const uint64_t *matrices, int len,
			       uint8_t *tuples[], uint32_t hashes[],
			       uint32_t count);
/* 1 if the gfni unit holds the real rte_thash_gfni_bulk. */
int dtnet_thash_gfni_compiled(void);
/* Sends DPDK's log to stderr (EAL writes it to stdout by default), so a
 * program's stdout (a JSON report) stays its own; call before rte_eal_init. */
int dtnet_rte_log_to_stderr(void);
/* Flushes C's stdout and stderr buffers (fflush), so what EAL printed
 * reaches the file descriptors before they are redirected or restored. */
void dtnet_stdio_flush(void);

#endif
