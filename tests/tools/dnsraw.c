/*
 * dnsraw: an end-to-end test tool that sends arbitrary bytes to a DNS
 * server over UDP or TCP and prints what comes back, always bounded by a
 * timeout. It owns nothing of the proxy and uses libc only: the bytes it
 * sends are whatever the test wants, valid or not, so it must not depend on
 * the parser it is testing. Modes: one datagram, raw TCP bytes, a burst of
 * pipelined TCP queries or of UDP queries checked one by one, a burst of
 * garbage datagrams, and seeded garbage printed as hex.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RAW_MAX		65536
#define PIPE_MAX	8192

/* Exit statuses: 0 got what was asked, 1 did not, 2 usage or system error. */
enum raw_exit {
	RAW_OK = 0,
	RAW_FAIL = 1,
	RAW_ERR = 2
};

struct raw_opts {
	int	wait_ms;	/* overall deadline for replies, ms */
	bool	shut_wr;	/* tcp: half-close after writing */
	long	want;		/* tcp: stop after this many replies, 0 = none */
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: dnsraw [-w MS] udp ADDR PORT HEX\n"
	    "       dnsraw [-w MS] [-s] [-n N] tcp ADDR PORT HEX\n"
	    "       dnsraw [-w MS] pipeline ADDR PORT COUNT NAME\n"
	    "       dnsraw [-w MS] udpmany ADDR PORT COUNT NAME\n"
	    "       dnsraw burst ADDR PORT COUNT SEED\n"
	    "       dnsraw garbage SEED LEN\n"
	    "HEX is sent as is (TCP framing included); NAME may hold %%d,\n"
	    "replaced by 1..2000. Exit 0 ok, 1 no or wrong answer, 2 error.\n");
	exit(RAW_ERR);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long
parse_long(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "dnsraw: '%s' is not a number in %ld..%ld\n",
		    s, lo, hi);
		exit(RAW_ERR);
	}
	return v;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes hex digits, ignoring spaces, ':' and '.'. Returns the length. */
static size_t
parse_hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1, v;

	for (; *s != '\0'; s++) {
		if (isspace((unsigned char)*s) || *s == ':' || *s == '.')
			continue;
		if ((v = hexval((unsigned char)*s)) < 0) {
			fprintf(stderr, "dnsraw: bad hex digit '%c'\n", *s);
			exit(RAW_ERR);
		}
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap) {
			fprintf(stderr, "dnsraw: hex too long\n");
			exit(RAW_ERR);
		}
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0) {
		fprintf(stderr, "dnsraw: odd number of hex digits\n");
		exit(RAW_ERR);
	}
	return n;
}

static void
print_hex(const uint8_t *p, size_t len)
{
	size_t i;

	fputs("hex ", stdout);
	for (i = 0; i < len; i++)
		printf("%02x", p[i]);
	putchar('\n');
}

/* One line describing a DNS message, then its bytes as hex. */
static void
print_reply(const uint8_t *p, size_t len)
{
	unsigned flags;

	if (len < 12) {
		printf("reply len=%zu short\n", len);
	} else {
		flags = (unsigned)p[2] << 8 | p[3];
		printf("reply len=%zu id=%04x qr=%u opcode=%u aa=%u tc=%u "
		    "rcode=%u qd=%u an=%u ns=%u ar=%u\n", len,
		    (unsigned)p[0] << 8 | p[1], flags >> 15,
		    (flags >> 11) & 0xf, (flags >> 10) & 1, (flags >> 9) & 1,
		    flags & 0xf, (unsigned)p[4] << 8 | p[5],
		    (unsigned)p[6] << 8 | p[7], (unsigned)p[8] << 8 | p[9],
		    (unsigned)p[10] << 8 | p[11]);
	}
	print_hex(p, len);
	fflush(stdout);
}

static int
make_addr(const char *host, const char *port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	long p = parse_long(port, 1, 65535);

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*sin6);
		return 0;
	}
	fprintf(stderr, "dnsraw: '%s' is not an IP address\n", host);
	return -1;
}

static int
open_sock(const char *host, const char *port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (make_addr(host, port, &ss, &len) == -1)
		return -1;
	if ((fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0)) == -1) {
		perror("dnsraw: socket");
		return -1;
	}
	if (type == SOCK_STREAM)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, len) == -1) {
		perror("dnsraw: connect");
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits until fd is readable or the deadline passes: 1, 0 or -1. */
static int
wait_readable(int fd, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t left;
	int rc;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1)
			return -1;
		return rc > 0;
	}
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
run_udp(const struct raw_opts *o, char **av)
{
	static uint8_t msg[RAW_MAX], rx[RAW_MAX];
	size_t len = parse_hex(av[2], msg, sizeof(msg));
	int64_t deadline;
	ssize_t n;
	int fd, rc;

	if ((fd = open_sock(av[0], av[1], SOCK_DGRAM)) == -1)
		return RAW_ERR;
	if (send(fd, msg, len, 0) == -1) {
		perror("dnsraw: send");
		close(fd);
		return RAW_ERR;
	}
	deadline = now_ms() + o->wait_ms;
	for (;;) {
		rc = wait_readable(fd, deadline);
		if (rc == 0) {
			puts("timeout");
			close(fd);
			return RAW_FAIL;
		}
		n = recv(fd, rx, sizeof(rx), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (rc == -1 || n == -1) {
			printf("error %s\n", strerror(errno));
			close(fd);
			return RAW_FAIL;
		}
		print_reply(rx, (size_t)n);
		close(fd);
		return RAW_OK;
	}
}

/*
 * Writes the bytes as given, then prints every complete framed reply and
 * how the connection ended: "eof", "reset" or "timeout" (still open).
 */
static int
run_tcp(const struct raw_opts *o, char **av)
{
	static uint8_t msg[RAW_MAX], rx[2 * RAW_MAX + 2];
	size_t len = parse_hex(av[2], msg, sizeof(msg)), have = 0, flen;
	long got = 0;
	int64_t deadline;
	ssize_t n;
	int fd, rc;

	if ((fd = open_sock(av[0], av[1], SOCK_STREAM)) == -1)
		return RAW_ERR;
	if (write_all(fd, msg, len) == -1) {
		printf("error write %s\n", strerror(errno));
		close(fd);
		return RAW_OK;
	}
	if (o->shut_wr)
		(void)shutdown(fd, SHUT_WR);
	deadline = now_ms() + o->wait_ms;
	for (;;) {
		rc = wait_readable(fd, deadline);
		if (rc == 0) {
			puts("timeout");
			break;
		}
		n = read(fd, rx + have, sizeof(rx) - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == ECONNRESET) {
			puts("reset");
			break;
		}
		if (rc == -1 || n == -1) {
			printf("error %s\n", strerror(errno));
			break;
		}
		if (n == 0) {
			if (have > 0)
				printf("partial %zu\n", have);
			puts("eof");
			break;
		}
		have += (size_t)n;
		while (have >= 2) {
			flen = (size_t)rx[0] << 8 | rx[1];
			if (have - 2 < flen)
				break;
			print_reply(rx + 2, flen);
			got++;
			memmove(rx, rx + 2 + flen, have - 2 - flen);
			have -= 2 + flen;
		}
		if (o->want > 0 && got >= o->want) {
			puts("done");
			break;
		}
	}
	fflush(stdout);
	close(fd);
	return RAW_OK;
}

/* Appends a query for name (dotted, no trailing dot) with id. */
static size_t
build_query(uint8_t *out, size_t cap, uint16_t id, const char *name)
{
	size_t n = 12, lablen;
	const char *p = name, *dot;

	if (cap < 12 + 256 + 4)
		return 0;
	memset(out, 0, 12);
	out[0] = id >> 8;
	out[1] = id & 0xff;
	out[2] = 0x01;		/* RD */
	out[5] = 1;		/* QDCOUNT */
	while (*p != '\0') {
		dot = strchr(p, '.');
		lablen = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (lablen == 0 || lablen > 63 || n + 1 + lablen > 12 + 254)
			return 0;
		out[n++] = (uint8_t)lablen;
		memcpy(out + n, p, lablen);
		n += lablen;
		p += lablen;
		if (*p == '.')
			p++;
	}
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = 1;		/* A */
	out[n++] = 0;
	out[n++] = 1;		/* IN */
	return n;
}

/* Skips a possibly compressed name; returns the offset after it or 0. */
static size_t
skip_name(const uint8_t *p, size_t len, size_t off)
{
	while (off < len) {
		if (p[off] == 0)
			return off + 1;
		if ((p[off] & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : 0;
		if ((p[off] & 0xc0) != 0)
			return 0;
		off += 1 + p[off];
	}
	return 0;
}

/*
 * A batch of distinct queries and the bookkeeping to check that each one
 * is answered exactly once, with NOERROR and the question that was sent.
 */
struct batch {
	uint8_t		tx[PIPE_MAX * 280];	/* framed queries, back to back */
	size_t		txlen;
	int32_t		idx[65536];		/* wire ID -> query index */
	uint8_t		seen[PIPE_MAX];
	size_t		qoff[PIPE_MAX];		/* question offset in tx */
	size_t		qlen[PIPE_MAX];		/* question length */
	size_t		moff[PIPE_MAX];		/* message offset in tx */
	size_t		mlen[PIPE_MAX];
	long		count, answered, dup, unknown, mismatch, rcode_err,
			empty;
	long		rcodes[16];		/* answers per RCODE */
};

static struct batch batch;

/* Builds count queries; NAME's "%d" becomes 1..2000 in turn. */
static int
batch_build(struct batch *b, long count, const char *fmt)
{
	const char *pct = strstr(fmt, "%d");
	char name[300];
	uint16_t id;
	size_t q;
	long i;

	memset(b->idx, 0xff, sizeof(b->idx));
	b->count = count;
	for (i = 0; i < count; i++) {
		/* 40503 is odd: i -> id is a bijection modulo 2^16. */
		id = (uint16_t)((unsigned long)i * 40503u + 12345u);
		b->idx[id] = (int32_t)i;
		if (pct != NULL)
			snprintf(name, sizeof(name), "%.*s%ld%s",
			    (int)(pct - fmt), fmt, i % 2000 + 1, pct + 2);
		else
			snprintf(name, sizeof(name), "%s", fmt);
		q = build_query(b->tx + b->txlen + 2,
		    sizeof(b->tx) - b->txlen - 2, id, name);
		if (q == 0) {
			fprintf(stderr, "dnsraw: bad name '%s'\n", name);
			return -1;
		}
		b->tx[b->txlen] = (uint8_t)(q >> 8);
		b->tx[b->txlen + 1] = (uint8_t)q;
		b->moff[i] = b->txlen + 2;
		b->mlen[i] = q;
		b->qoff[i] = b->txlen + 2 + 12;
		b->qlen[i] = q - 12;
		b->txlen += 2 + q;
	}
	return 0;
}

static void
batch_check(struct batch *b, const uint8_t *m, size_t len)
{
	size_t qend;
	long i;

	if (len < 12 || b->idx[m[0] << 8 | m[1]] < 0 || (m[2] & 0x80) == 0) {
		b->unknown++;
		return;
	}
	i = b->idx[m[0] << 8 | m[1]];
	if (b->seen[i]++ > 0)
		b->dup++;
	else
		b->answered++;
	b->rcodes[m[3] & 0x0f]++;
	if ((m[3] & 0x0f) != 0)
		b->rcode_err++;
	else if ((m[6] | m[7]) == 0)
		b->empty++;
	qend = skip_name(m, len, 12);
	if (qend == 0 || qend + 4 > len || qend + 4 - 12 != b->qlen[i] ||
	    strncasecmp((const char *)m + 12, (const char *)b->tx + b->qoff[i],
	    b->qlen[i]) != 0)
		b->mismatch++;
}

static int
batch_report(const struct batch *b, bool timed_out, bool closed)
{
	int r;

	printf("sent=%ld answered=%ld dup=%ld unknown=%ld mismatch=%ld "
	    "rcode_err=%ld empty=%ld", b->count, b->answered, b->dup,
	    b->unknown, b->mismatch, b->rcode_err, b->empty);
	for (r = 0; r < 16; r++)
		if (b->rcodes[r] > 0)
			printf(" rcode%d=%ld", r, b->rcodes[r]);
	printf("%s%s\n", timed_out ? " timeout" : "", closed ? " closed" : "");
	if (b->answered != b->count || b->dup != 0 || b->unknown != 0 ||
	    b->mismatch != 0 || b->rcode_err != 0)
		return RAW_FAIL;
	return RAW_OK;
}

/*
 * Sends COUNT framed queries in a single write on one TCP connection and
 * reads the answers, in whatever order they come.
 */
static int
run_pipeline(const struct raw_opts *o, char **av)
{
	static uint8_t rx[2 * RAW_MAX + 2];
	struct batch *b = &batch;
	size_t have = 0, flen;
	int64_t deadline;
	ssize_t n;
	int fd, rc;
	bool timed_out = false, closed = false;

	if (batch_build(b, parse_long(av[2], 1, PIPE_MAX), av[3]) == -1)
		return RAW_ERR;
	if ((fd = open_sock(av[0], av[1], SOCK_STREAM)) == -1)
		return RAW_ERR;
	if (write_all(fd, b->tx, b->txlen) == -1) {
		printf("error write %s\n", strerror(errno));
		close(fd);
		return RAW_FAIL;
	}
	deadline = now_ms() + o->wait_ms;
	while (b->answered < b->count) {
		rc = wait_readable(fd, deadline);
		if (rc == 0) {
			timed_out = true;
			break;
		}
		n = read(fd, rx + have, sizeof(rx) - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (rc == -1 || n <= 0) {
			closed = true;
			break;
		}
		have += (size_t)n;
		while (have >= 2) {
			flen = (size_t)rx[0] << 8 | rx[1];
			if (have - 2 < flen)
				break;
			batch_check(b, rx + 2, flen);
			memmove(rx, rx + 2 + flen, have - 2 - flen);
			have -= 2 + flen;
		}
	}
	close(fd);
	return batch_report(b, timed_out, closed);
}

/*
 * Sends COUNT queries as datagrams from one UDP socket, all before reading
 * any answer, then collects the answers until all came or the deadline.
 */
static int
run_udpmany(const struct raw_opts *o, char **av)
{
	static uint8_t rx[RAW_MAX];
	const struct timespec pace = { .tv_nsec = 1000000 };
	struct batch *b = &batch;
	int64_t deadline;
	ssize_t n;
	long i;
	int fd, rc, bufsz = 4 << 20;
	bool timed_out = false;

	if (batch_build(b, parse_long(av[2], 1, PIPE_MAX), av[3]) == -1)
		return RAW_ERR;
	if ((fd = open_sock(av[0], av[1], SOCK_DGRAM)) == -1)
		return RAW_ERR;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	for (i = 0; i < b->count; i++) {
		if (send(fd, b->tx + b->moff[i], b->mlen[i], 0) == -1) {
			printf("error send %s\n", strerror(errno));
			close(fd);
			return RAW_FAIL;
		}
		/* A little pacing, so a socket buffer is not what loses. */
		if (i % 16 == 15)
			(void)nanosleep(&pace, NULL);
	}
	deadline = now_ms() + o->wait_ms;
	while (b->answered < b->count) {
		rc = wait_readable(fd, deadline);
		if (rc == 0) {
			timed_out = true;
			break;
		}
		n = recv(fd, rx, sizeof(rx), 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (rc == -1 || n == -1) {
			printf("error recv %s\n", strerror(errno));
			break;
		}
		batch_check(b, rx, (size_t)n);
	}
	close(fd);
	return batch_report(b, timed_out, false);
}


/* xorshift64*: a fixed seed gives the same bytes on every run. */
static uint64_t
rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static void
rnd_fill(uint64_t *s, uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(rnd_next(s) >> 32);
}

static int
run_burst(char **av)
{
	static uint8_t msg[1024];
	long count = parse_long(av[2], 1, 10000000), i, sent = 0;
	uint64_t seed = (uint64_t)parse_long(av[3], 1, 0x7fffffff);
	size_t len;
	int fd;

	if ((fd = open_sock(av[0], av[1], SOCK_DGRAM)) == -1)
		return RAW_ERR;
	for (i = 0; i < count; i++) {
		len = (size_t)(rnd_next(&seed) % sizeof(msg));
		rnd_fill(&seed, msg, len);
		if (send(fd, msg, len, 0) == -1) {
			/* A refused port answers with ICMP: keep going. */
			if (errno != ECONNREFUSED && errno != ENOBUFS &&
			    errno != EAGAIN) {
				perror("dnsraw: send");
				break;
			}
			continue;
		}
		sent++;
	}
	close(fd);
	printf("sent=%ld\n", sent);
	return sent == count ? RAW_OK : RAW_FAIL;
}

static int
run_garbage(char **av)
{
	static uint8_t msg[RAW_MAX];
	uint64_t seed = (uint64_t)parse_long(av[0], 1, 0x7fffffff);
	size_t len = (size_t)parse_long(av[1], 0, RAW_MAX), i;

	rnd_fill(&seed, msg, len);
	for (i = 0; i < len; i++)
		printf("%02x", msg[i]);
	putchar('\n');
	return RAW_OK;
}

int
main(int argc, char *argv[])
{
	struct raw_opts o = { .wait_ms = 2000 };
	int ch;

	while ((ch = getopt(argc, argv, "+w:sn:")) != -1) {
		switch (ch) {
		case 'w':
			o.wait_ms = (int)parse_long(optarg, 1, 600000);
			break;
		case 's':
			o.shut_wr = true;
			break;
		case 'n':
			o.want = parse_long(optarg, 1, PIPE_MAX);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (strcmp(argv[0], "udp") == 0 && argc == 4)
		return run_udp(&o, argv + 1);
	if (strcmp(argv[0], "tcp") == 0 && argc == 4)
		return run_tcp(&o, argv + 1);
	if (strcmp(argv[0], "pipeline") == 0 && argc == 5)
		return run_pipeline(&o, argv + 1);
	if (strcmp(argv[0], "udpmany") == 0 && argc == 5)
		return run_udpmany(&o, argv + 1);
	if (strcmp(argv[0], "burst") == 0 && argc == 5)
		return run_burst(argv + 1);
	if (strcmp(argv[0], "garbage") == 0 && argc == 3)
		return run_garbage(argv + 1);
	usage();
	return RAW_ERR;
}
