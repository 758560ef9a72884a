/* See shim.h. Every function is one call per burst (or per setup step). */
#include "shim.h"

#include <rte_prefetch.h>

uint16_t tg_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t tg_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

int tg_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **pkts, unsigned int n)
{
	return rte_pktmbuf_alloc_bulk(pool, pkts, n);
}

void tg_free_bulk(struct rte_mbuf **pkts, unsigned int n)
{
	rte_pktmbuf_free_bulk(pkts, n);
}

void tg_prefetch_data(struct rte_mbuf *const *pkts, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
}

unsigned int tg_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n)
{
	return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned int tg_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n)
{
	return rte_ring_dequeue_burst(r, objs, n, NULL);
}

unsigned int tg_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

int tg_errno(void)
{
	return rte_errno;
}

unsigned int tg_lcore_id(void)
{
	return rte_lcore_id();
}

unsigned int tg_lcore_id_any(void)
{
	return LCORE_ID_ANY;
}

uint64_t tg_rss_hf(void)
{
	return RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP;
}

uint16_t tg_mbuf_default_buf_size(void)
{
	return RTE_MBUF_DEFAULT_BUF_SIZE;
}

uint16_t tg_mbuf_headroom(void)
{
	return RTE_PKTMBUF_HEADROOM;
}
