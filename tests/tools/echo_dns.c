/*
 * echo_dns: a test stand-in for a DNS server. Binds one UDP address and
 * answers every query with the query itself, QR set and the chosen RCODE
 * (SERVFAIL unless -r says otherwise), from the address it was sent to.
 * Logs one line per query on stdout so tests can see where packets went.
 * libc only; used by tests/e2e/init.bats, never by the product.
 *
 *   echo_dns [-r RCODE] ADDR PORT
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long
num(const char *s, unsigned long max, const char *what)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' || v > max)
		errx(2, "bad %s '%s'", what, s);
	return v;
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage ss, from;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	char host[INET6_ADDRSTRLEN];
	unsigned char pkt[65536];
	unsigned long rcode = 2, port;
	socklen_t slen, flen;
	int c, fd, one = 1;
	ssize_t n;

	while ((c = getopt(argc, argv, "r:")) != -1) {
		if (c != 'r')
			errx(2, "usage: echo_dns [-r RCODE] ADDR PORT");
		rcode = num(optarg, 15, "rcode");
	}
	if (argc - optind != 2)
		errx(2, "usage: echo_dns [-r RCODE] ADDR PORT");
	port = num(argv[optind + 1], 65535, "port");
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, argv[optind], &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		slen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, argv[optind], &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		slen = sizeof(*s6);
	} else
		errx(2, "bad address '%s'", argv[optind]);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		err(1, "socket");
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		err(1, "IPV6_V6ONLY");
	if (bind(fd, (struct sockaddr *)&ss, slen) == -1)
		err(1, "bind %s port %lu", argv[optind], port);
	printf("echo_dns: listening on %s port %lu\n", argv[optind], port);
	for (;;) {
		flen = sizeof(from);
		n = recvfrom(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&from,
		    &flen);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			err(1, "recvfrom");
		}
		if (n < 12 || (pkt[2] & 0x80) != 0)
			continue;	/* not a query */
		if (from.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&from)->sin6_addr, host,
			    sizeof(host));
		else
			inet_ntop(AF_INET,
			    &((struct sockaddr_in *)&from)->sin_addr, host,
			    sizeof(host));
		printf("echo_dns: query from %s port %u id 0x%02x%02x\n", host,
		    ntohs(((struct sockaddr_in *)&from)->sin_port), pkt[0],
		    pkt[1]);
		pkt[2] |= 0x80;
		pkt[3] = (unsigned char)((pkt[3] & 0xf0) | rcode);
		if (sendto(fd, pkt, (size_t)n, 0, (struct sockaddr *)&from,
		    flen) == -1)
			warn("sendto");
	}
}
