/* Tollgate's view of DPDK: the headers bindgen reads, and the shim's declarations.
 *
 * DPDK implements its burst functions as `static inline` in headers, so Rust cannot call
 * them directly. The shim wraps each at burst granularity (one call per burst, never one
 * per packet) and exposes the few macros and thread-locals Rust needs. */
#ifndef TOLLGATE_DPDK_SHIM_H
#define TOLLGATE_DPDK_SHIM_H

#include <stdint.h>

#include <rte_bus_vdev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

/* rte_eth_rx_burst: receives up to n packets from a queue into pkts. */
uint16_t tg_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
/* rte_eth_tx_burst: queues up to n packets from the front of pkts; returns how many the
 * driver took (it owns them from then on). */
uint16_t tg_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
/* rte_pktmbuf_alloc_bulk: all n mbufs (reset, default headroom) or none; 0 on success. */
int tg_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **pkts, unsigned int n);
/* rte_pktmbuf_free_bulk: frees n mbufs (each back to its own pool). */
void tg_free_bulk(struct rte_mbuf **pkts, unsigned int n);
/* rte_prefetch0 of the first data cache line of each of n mbufs. */
void tg_prefetch_data(struct rte_mbuf *const *pkts, unsigned int n);
/* rte_ring_enqueue_burst / rte_ring_dequeue_burst (tests and the ring peer). */
unsigned int tg_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n);
unsigned int tg_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n);
/* rte_ring_count. */
unsigned int tg_ring_count(const struct rte_ring *r);

/* The calling thread's rte_errno. */
int tg_errno(void);
/* The calling thread's lcore id (LCORE_ID_ANY for a thread DPDK does not know). */
unsigned int tg_lcore_id(void);
/* LCORE_ID_ANY. */
unsigned int tg_lcore_id_any(void);
/* RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP: the hash fields Tollgate asks for. */
uint64_t tg_rss_hf(void);
/* RTE_MBUF_DEFAULT_BUF_SIZE and RTE_PKTMBUF_HEADROOM. */
uint16_t tg_mbuf_default_buf_size(void);
uint16_t tg_mbuf_headroom(void);

#endif
