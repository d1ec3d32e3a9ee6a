/*
 * rte_thash_gfni_bulk, DPDK's Toeplitz hash on GFNI + AVX-512. DPDK defines
 * it in a header, and only when the compiler targets those extensions, so
 * this unit alone is compiled with them (build.rs) and Rust calls it only
 * after dtnet_thash_gfni_available() said the CPU has them.
 */
#include <rte_config.h>
#include <rte_thash.h>

#include "shim.h"

#ifdef RTE_THASH_GFNI_DEFINED
int dtnet_thash_gfni_compiled(void)
{
	return 1;
}

void dtnet_rte_thash_gfni_bulk(const uint64_t *matrices, int len,
			       uint8_t *tuples[], uint32_t hashes[],
			       uint32_t count)
{
	rte_thash_gfni_bulk(matrices, len, tuples, hashes, count);
}
#else
int dtnet_thash_gfni_compiled(void)
{
	return 0;
}

void dtnet_rte_thash_gfni_bulk(const uint64_t *matrices, int len,
			       uint8_t *tuples[], uint32_t hashes[],
			       uint32_t count)
{
	(void)matrices;
	(void)len;
	(void)tuples;
	(void)hashes;
	(void)count;
}
#endif
