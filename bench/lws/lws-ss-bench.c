/*
 * lws-ss-bench: the libwebsockets side of bench/lws (see README.md there).
 * A Secure Streams client in C, measuring what bench/lws/ssclient measures
 * with ss, against the same loopback servers and the same policy:
 *
 *   lws-ss-bench POLICY.json h1 N         N GETs on streamtype "get"
 *   lws-ss-bench POLICY.json echo N       N 64 B round trips on "bench"
 *   lws-ss-bench POLICY.json idle N       N created, unconnected "get" streams
 *   lws-ss-bench POLICY.json connected N  N connected "bench" streams
 *
 * It prints one JSON object. Written for this repository against the public
 * libwebsockets API (libwebsockets.h); build with bench/lws/run.sh.
 */
#include <libwebsockets.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { T_H1, T_ECHO, T_IDLE, T_CONNECTED };

typedef struct {
	struct lws_ss_handle *ss;
	void *opaque;
	int sent_mode;
	int got;
} bs_t;

static struct {
	struct lws_context *cx;
	int test, n, done, warm, finished, failed;
	char *policy;
	struct lws_ss_handle **hs;
	long long t0, t_send;
	struct rusage ru0;
	long rss0;
	size_t heap0;
	long long *rtt;
	lws_sorted_usec_list_t sul;
	struct lws_ss_handle *one;
} g;

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long rss_bytes(void)
{
	char line[256];
	long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	fclose(f);
	return kb * 1024;
}

static size_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static double cpu_us(const struct rusage *a, const struct rusage *b)
{
	double u = (b->ru_utime.tv_sec - a->ru_utime.tv_sec) * 1e6 + (b->ru_utime.tv_usec - a->ru_utime.tv_usec);
	double s = (b->ru_stime.tv_sec - a->ru_stime.tv_sec) * 1e6 + (b->ru_stime.tv_usec - a->ru_stime.tv_usec);
	return u + s;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static const char *names[] = { "h1", "echo", "idle", "connected" };

static void finish(void)
{
	struct rusage ru;
	double el = (double)(now_us() - g.t0) / 1e6;

	if (g.finished)
		return;
	g.finished = 1;
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"client\":\"lws\",\"test\":\"%s\",\"n\":%d,\"seconds\":%.6f", names[g.test], g.n, el);
	switch (g.test) {
	case T_H1:
	case T_ECHO:
		printf(",\"rate\":%.1f,\"cpu_us_per_op\":%.2f", g.n / el, cpu_us(&g.ru0, &ru) / g.n);
		if (g.test == T_ECHO) {
			qsort(g.rtt, (size_t)g.n, sizeof(*g.rtt), cmp_ll);
			printf(",\"p50_us\":%lld,\"p99_us\":%lld", g.rtt[g.n / 2], g.rtt[g.n * 99 / 100]);
		}
		break;
	case T_IDLE:
	case T_CONNECTED:
		printf(",\"heap_per_stream\":%.1f,\"rss_per_stream\":%.1f",
		       ((double)heap_bytes() - (double)g.heap0) / g.n, (double)(rss_bytes() - g.rss0) / g.n);
		break;
	}
	printf("}\n");
	fflush(stdout);
	lws_default_loop_exit(g.cx);
}

static void fail(const char *why)
{
	fprintf(stderr, "lws-ss-bench: %s\n", why);
	g.failed = 1;
	g.finished = 1;
	lws_default_loop_exit(g.cx);
}

static void reconnect_cb(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	if (g.one && lws_ss_client_connect(g.one))
		fail("client_connect");
}

static lws_ss_state_return_t bs_rx(void *userobj, const uint8_t *buf, size_t len, int flags)
{
	bs_t *b = (bs_t *)userobj;
	(void)buf;
	(void)flags;
	if (g.test != T_ECHO)
		return LWSSSSRET_OK;
	b->got += (int)len;
	while (b->got >= 64) {
		b->got -= 64;
		if (g.done >= 0)
			g.rtt[g.done] = now_us() - g.t_send;
		g.done++;
		if (g.done == 0) { /* warm-up over */
			g.t0 = now_us();
			getrusage(RUSAGE_SELF, &g.ru0);
		}
		if (g.done >= g.n) {
			finish();
			return LWSSSSRET_OK;
		}
		return lws_ss_request_tx(b->ss);
	}
	return LWSSSSRET_OK;
}

static lws_ss_state_return_t bs_tx(void *userobj, lws_ss_tx_ordinal_t ord, uint8_t *buf, size_t *len, int *flags)
{
	bs_t *b = (bs_t *)userobj;
	size_t n = 64;
	(void)ord;
	if (g.test != T_ECHO || *len < 65)
		return LWSSSSRET_TX_DONT_SEND;
	if (!b->sent_mode) {
		/* the ssproxy-bench peer: the first byte selects echo */
		buf[0] = 'E';
		memset(buf + 1, 'x', 64);
		n = 65;
		b->sent_mode = 1;
	} else
		memset(buf, 'x', 64);
	*len = n;
	*flags = LWSSS_FLAG_SOM | LWSSS_FLAG_EOM;
	g.t_send = now_us();
	return LWSSSSRET_OK;
}

static lws_ss_state_return_t bs_state(void *userobj, void *h_src, lws_ss_constate_t state, lws_ss_tx_ordinal_t ack)
{
	bs_t *b = (bs_t *)userobj;
	(void)h_src;
	(void)ack;
	switch (state) {
	case LWSSSCS_CREATING:
		if (g.test == T_IDLE)
			return LWSSSSRET_OK;
		return lws_ss_client_connect(b->ss);
	case LWSSSCS_CONNECTED:
		if (g.test == T_ECHO)
			return lws_ss_request_tx(b->ss);
		if (g.test == T_CONNECTED && ++g.done == g.n)
			finish();
		break;
	case LWSSSCS_QOS_ACK_REMOTE:
		if (g.test == T_H1)
			g.done++;
		break;
	case LWSSSCS_DISCONNECTED:
		if (g.test == T_H1 && !g.finished) {
			if (g.done >= g.n)
				finish();
			else /* the next transaction, from the event loop */
				lws_sul_schedule(g.cx, 0, &g.sul, reconnect_cb, 1);
		}
		break;
	case LWSSSCS_ALL_RETRIES_FAILED:
	case LWSSSCS_QOS_NACK_REMOTE:
		fail(lws_ss_state_name(state));
		break;
	default:
		break;
	}
	return LWSSSSRET_OK;
}

static int create_one(struct lws_ss_handle **ph, const char *st)
{
	lws_ss_info_t ssi;
	memset(&ssi, 0, sizeof(ssi));
	ssi.handle_offset = offsetof(bs_t, ss);
	ssi.opaque_user_data_offset = offsetof(bs_t, opaque);
	ssi.rx = bs_rx;
	ssi.tx = bs_tx;
	ssi.state = bs_state;
	ssi.user_alloc = sizeof(bs_t);
	ssi.streamtype = st;
	return lws_ss_create(g.cx, 0, &ssi, NULL, ph, NULL, NULL);
}

static int start(void)
{
	int i;
	g.t0 = now_us();
	getrusage(RUSAGE_SELF, &g.ru0);
	g.rss0 = rss_bytes();
	g.heap0 = heap_bytes();
	switch (g.test) {
	case T_H1:
		return create_one(&g.one, "get");
	case T_ECHO:
		g.done = -100; /* warm-up round trips */
		return create_one(&g.one, "bench");
	default:
		g.hs = calloc((size_t)g.n, sizeof(*g.hs));
		for (i = 0; i < g.n; i++)
			if (create_one(&g.hs[i], g.test == T_IDLE ? "get" : "bench"))
				return 1;
		if (g.test == T_IDLE)
			finish();
		return 0;
	}
}

static int app_state(lws_state_manager_t *mgr, lws_state_notify_link_t *link, int current, int target)
{
	(void)mgr;
	(void)link;
	if (current == LWS_SYSTATE_OPERATIONAL && target == LWS_SYSTATE_OPERATIONAL && start())
		fail("lws_ss_create failed");
	return 0;
}

static lws_state_notify_link_t nl = { .name = "bench", .notify_cb = app_state };
static lws_state_notify_link_t *const nls[] = { &nl, NULL };

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	long n;
	char *p;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	if (p)
		p[n] = '\0';
	fclose(f);
	return p;
}

int main(int argc, const char **argv)
{
	struct lws_context_creation_info info;
	int i;

	if (argc != 4) {
		fprintf(stderr, "usage: lws-ss-bench POLICY.json h1|echo|idle|connected N\n");
		return 2;
	}
	for (i = 0; i < 4; i++)
		if (!strcmp(argv[2], names[i]))
			g.test = i;
	g.n = atoi(argv[3]);
	if (g.n < 1 || (g.test == T_H1 && strcmp(argv[2], "h1"))) {
		fprintf(stderr, "lws-ss-bench: bad test %s or count %s\n", argv[2], argv[3]);
		return 2;
	}
	g.policy = slurp(argv[1]);
	if (!g.policy) {
		fprintf(stderr, "lws-ss-bench: cannot read %s\n", argv[1]);
		return 2;
	}
	g.rtt = calloc((size_t)g.n, sizeof(*g.rtt));
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.pss_policies_json = g.policy;
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.fd_limit_per_thread = (unsigned int)(g.n + 64);
	info.register_notifier_list = nls;
	g.cx = lws_create_context(&info);
	if (!g.cx) {
		fprintf(stderr, "lws-ss-bench: lws_create_context failed\n");
		return 1;
	}
	while (!g.finished && lws_service(g.cx, 0) >= 0)
		;
	if (g.hs)
		for (i = 0; i < g.n; i++)
			if (g.hs[i])
				lws_ss_destroy(&g.hs[i]);
	if (g.one)
		lws_ss_destroy(&g.one);
	lws_context_destroy(g.cx);
	return g.failed;
}
