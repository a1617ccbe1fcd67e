/*
 * gai: resolves names the way an ordinary application does, through glibc's
 * getaddrinfo (AF_UNSPEC, SOCK_STREAM), so that /etc/resolv.conf, its search
 * list and ndots apply. Prints one line per name, "NAME ADDR[,ADDR...]" or
 * "NAME error: <gai_strerror>", and exits 0 only if every name resolved.
 * libc only: the e2e tests and the demo run it as an unmodified client.
 */

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define GAI_MAX_ADDRS	256

static const char *
gai_addr_text(const struct addrinfo *ai, char *out, size_t outlen)
{
	const void *a;

	if (ai->ai_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)
		    ai->ai_addr)->sin_addr;
	else if (ai->ai_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)
		    ai->ai_addr)->sin6_addr;
	else
		return NULL;
	return inet_ntop(ai->ai_family, a, out, (socklen_t)outlen);
}

/* Resolves one name and prints its line; returns true if it resolved. */
static bool
gai_one(const char *name)
{
	char seen[GAI_MAX_ADDRS][INET6_ADDRSTRLEN];
	char text[INET6_ADDRSTRLEN];
	struct addrinfo hints, *res, *ai;
	size_t nseen = 0, i;
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(name, NULL, &hints, &res);
	if (r != 0) {
		printf("%s error: %s\n", name, gai_strerror(r));
		return false;
	}
	printf("%s ", name);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (gai_addr_text(ai, text, sizeof(text)) == NULL)
			continue;
		for (i = 0; i < nseen; i++)
			if (strcmp(seen[i], text) == 0)
				break;
		if (i < nseen || nseen == GAI_MAX_ADDRS)
			continue;
		memcpy(seen[nseen], text, sizeof(text));
		printf("%s%s", nseen > 0 ? "," : "", text);
		nseen++;
	}
	printf("\n");
	freeaddrinfo(res);
	return true;
}

int
main(int argc, char **argv)
{
	bool ok = true;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: gai NAME [NAME...]\n");
		return 2;
	}
	for (i = 1; i < argc; i++)
		if (!gai_one(argv[i]))
			ok = false;
	if (fflush(stdout) != 0)
		return 1;
	return ok ? 0 : 1;
}
