/* See xdp_shim.h. Only set-up steps: nothing here runs per packet. */
#include "xdp_shim.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LOG_SIZE 8192

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[LOG_SIZE];
static size_t log_len;

static int capture(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char line[1024];
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	n = vsnprintf(line, sizeof(line), fmt, args);
	if (n <= 0)
		return 0;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	pthread_mutex_lock(&log_lock);
	if (log_len + (size_t)n >= LOG_SIZE) {
		/* Keep the tail: the verifier's verdict comes last. */
		size_t keep = LOG_SIZE / 2;
		if (keep > log_len)
			keep = log_len;
		memmove(log_buf, log_buf + log_len - keep, keep);
		log_len = keep;
	}
	if (log_len + (size_t)n < LOG_SIZE) {
		memcpy(log_buf + log_len, line, (size_t)n);
		log_len += (size_t)n;
	}
	pthread_mutex_unlock(&log_lock);
	return n;
}

void tg_xdp_log_capture(void)
{
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	pthread_mutex_unlock(&log_lock);
	libbpf_set_print(capture);
}

size_t tg_xdp_log_take(char *out, size_t len)
{
	size_t n;

	if (len == 0)
		return 0;
	pthread_mutex_lock(&log_lock);
	n = log_len < len - 1 ? log_len : len - 1;
	memcpy(out, log_buf, n);
	out[n] = 0;
	log_len = 0;
	pthread_mutex_unlock(&log_lock);
	return n;
}

int tg_xdp_link(int prog_fd, int ifindex, uint32_t flags)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
	int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);

	/* libbpf 1.x returns -errno; older modes return -1 and set errno. */
	if (fd == -1)
		return -errno;
	return fd;
}
