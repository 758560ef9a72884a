/* Tollgate's view of libbpf: the headers bindgen reads, and the shim's declarations.
 *
 * The shim holds what is awkward from Rust: libbpf's variadic print callback (its
 * messages, the verifier's log among them, are kept for the error the port returns
 * instead of going to stderr) and the option structs libbpf fills with its own macros.
 * Nothing here is called per packet: the AF_XDP rings are plain shared memory that the
 * port reads and writes itself. */
#ifndef TOLLGATE_XDP_SHIM_H
#define TOLLGATE_XDP_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

/* From now on, libbpf's warnings are appended to a buffer (the last 8 KiB are kept)
 * instead of printed; the buffer is emptied. */
void tg_xdp_log_capture(void);
/* Copies what was captured since tg_xdp_log_capture into out (NUL-terminated, cut to
 * len - 1 bytes) and empties the buffer; returns the length copied. */
size_t tg_xdp_log_take(char *out, size_t len);
/* Attaches prog_fd to interface ifindex through a BPF link with the XDP mode flags
 * (XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE); the program stays attached while the
 * returned link descriptor is open. A negative errno on failure. */
int tg_xdp_link(int prog_fd, int ifindex, uint32_t flags);

#endif
