/*
 * A DoT server for the unit tests, inside the test process: TLS on
 * loopback with a throw-away certificate for "up.test", a few connections
 * at once, stepped by hand between loop passes (no thread, no sleep). It
 * records each query it reads (with the connection it came on) and sends
 * whatever bytes the test gives it, so a test decides every answer.
 */
#ifndef TESTS_UNIT_PROXY_DOTSRV_H
#define TESTS_UNIT_PROXY_DOTSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define DOTSRV_CONNS	4
#define DOTSRV_QMAX	160
#define DOTSRV_QLEN	1536

struct dotsrv_conn {
	int		 fd;		/* -1 when free */
	SSL		*ssl;		/* owned */
	bool		 up;		/* handshake done */
	uint8_t		 in[8192];
	size_t		 inlen;
};

struct dotsrv_query {
	int		 conn;		/* index into c[] */
	size_t		 len;
	uint8_t		 msg[DOTSRV_QLEN];
};

struct dotsrv {
	int			 lfd;
	SSL_CTX			*ctx;		/* owned */
	uint16_t		 port;
	bool			 tls;		/* false: accept, never handshake */
	struct dotsrv_conn	 c[DOTSRV_CONNS];
	struct dotsrv_query	 q[DOTSRV_QMAX];
	int			 queries;	/* read so far (kept: QMAX) */
	int			 accepted;
	uint16_t		 last_id;
	int			 last_conn;
};

/* A self-signed CA certificate for up.test, written to dir/ca.pem (its
 * path in ca_path). 0 or -1. */
int	dotsrv_cert(const char *dir, EVP_PKEY **keyp, X509 **certp,
	    char *ca_path, size_t cap);
/* Listens on 127.0.0.1, a free port (s->port). 0 or -1. */
int	dotsrv_open(struct dotsrv *s, EVP_PKEY *key, X509 *cert);
/* Accepts, handshakes, reads whole queries; never blocks. */
void	dotsrv_step(struct dotsrv *s);
/* Sends msg with its length prefix on connection conn. 0 or -1. */
int	dotsrv_send(struct dotsrv *s, int conn, const uint8_t *msg, size_t len);
/* Closes connection conn at once (no close_notify). */
void	dotsrv_drop(struct dotsrv *s, int conn);
void	dotsrv_close(struct dotsrv *s);

/*
 * Messages as the tests build them (uncompressed question at 12): a client
 * query for name (RD; OPT of 4096 bytes when opt), where a message's
 * question ends, and the upstream's answer to query q (its ID and
 * question, lower-cased, one A record 203.0.113.1 with ttl, OPT when
 * opt). Each returns a length.
 */
size_t	mkq(uint8_t *out, uint16_t id, const char *name, uint16_t qtype,
	    bool opt);
size_t	qend(const uint8_t *m, size_t len);
size_t	mka(uint8_t *out, const uint8_t *q, size_t qlen, uint32_t ttl,
	    bool opt);

#endif
