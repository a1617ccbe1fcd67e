/*
 * floor - the physical floor of a cached answer on this machine: a UDP
 * responder that does the least any DNS server must do. It takes queries
 * in batches (recvmmsg), turns each into its answer in place (QR and RA
 * set, the question kept, anything after it replaced by one A record for
 * 203.0.113.1, TTL 300) and sends the batch back (sendmmsg). No cache, no
 * parsing beyond walking the question name, one thread. The benchmark
 * measures its CPU per answer in the same run as the forwarders', so that
 * theirs can be given as a ratio to it: what is left above the floor is
 * what their own code costs.
 *
 * Usage: floor ADDR PORT   (runs until killed)
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH	64
#define MSGMAX	1500

static const uint8_t rr_a[16] = {
	0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 203, 0, 113, 1,
};

/* Turns query q (n bytes) into its answer in place; returns the answer's
 * length, or 0 to drop it. */
static size_t
answer(uint8_t *q, size_t n)
{
	size_t off = 12;

	if (n < 12 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
		return 0;
	while (off < n && q[off] != 0) {
		if (q[off] > 63)
			return 0;
		off += (size_t)q[off] + 1;
	}
	off += 5;			/* root label, type, class */
	if (off > n || off + sizeof(rr_a) > MSGMAX)
		return 0;
	q[2] = (uint8_t)(0x80 | (q[2] & 0x01));	/* QR, RD kept, opcode 0 */
	q[3] = 0x80;				/* RA, NOERROR */
	q[6] = 0;
	q[7] = 1;
	memset(q + 8, 0, 4);
	memcpy(q + off, rr_a, sizeof(rr_a));
	return off + sizeof(rr_a);
}

int
main(int argc, char *argv[])
{
	static uint8_t buf[BATCH][MSGMAX];
	static struct sockaddr_in peer[BATCH];
	static struct mmsghdr in[BATCH], out[BATCH];
	static struct iovec iov[BATCH], oiov[BATCH];
	struct sockaddr_in sa;
	int fd, n, i, k;

	if (argc != 3) {
		fprintf(stderr, "usage: floor ADDR PORT\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
	    (fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		perror("floor");
		return 1;
	}
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = MSGMAX;
		in[i].msg_hdr.msg_iov = &iov[i];
		in[i].msg_hdr.msg_iovlen = 1;
		in[i].msg_hdr.msg_name = &peer[i];
	}
	for (;;) {
		for (i = 0; i < BATCH; i++)
			in[i].msg_hdr.msg_namelen = sizeof(peer[i]);
		if ((n = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL)) <= 0)
			continue;
		for (i = 0, k = 0; i < n; i++) {
			size_t len = answer(buf[i], in[i].msg_len);

			if (len == 0)
				continue;
			oiov[k].iov_base = buf[i];
			oiov[k].iov_len = len;
			memset(&out[k].msg_hdr, 0, sizeof(out[k].msg_hdr));
			out[k].msg_hdr.msg_iov = &oiov[k];
			out[k].msg_hdr.msg_iovlen = 1;
			out[k].msg_hdr.msg_name = &peer[i];
			out[k].msg_hdr.msg_namelen = in[i].msg_hdr.msg_namelen;
			k++;
		}
		if (k > 0)
			(void)sendmmsg(fd, out, (unsigned)k, 0);
	}
}
