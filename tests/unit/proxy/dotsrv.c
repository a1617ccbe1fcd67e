/* The unit tests' DoT server (see dotsrv.h). */
#include "tests/unit/proxy/dotsrv.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

int
dotsrv_cert(const char *dir, EVP_PKEY **keyp, X509 **certp, char *ca_path,
    size_t cap)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	FILE *f;

	if (key == NULL || x == NULL)
		return -1;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"up.test", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:up.test");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (X509_sign(x, key, EVP_sha256()) == 0)
		return -1;
	(void)snprintf(ca_path, cap, "%s/ca.pem", dir);
	if ((f = fopen(ca_path, "w")) == NULL)
		return -1;
	PEM_write_X509(f, x);
	fclose(f);
	*keyp = key;
	*certp = x;
	return 0;
}

int
dotsrv_open(struct dotsrv *s, EVP_PKEY *key, X509 *cert)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int i;

	memset(s, 0, sizeof(*s));
	s->tls = true;
	for (i = 0; i < DOTSRV_CONNS; i++)
		s->c[i].fd = -1;
	s->ctx = SSL_CTX_new(TLS_server_method());
	if (s->ctx == NULL || SSL_CTX_use_certificate(s->ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(s->ctx, key) != 1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s->lfd == -1 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(s->lfd, 8) || getsockname(s->lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	s->port = ntohs(sa.sin_port);
	return 0;
}

/* Reads what connection c has and records its whole queries. */
static void
conn_read(struct dotsrv *s, int ci)
{
	struct dotsrv_conn *c = &s->c[ci];
	int n;

	for (;;) {
		if (c->inlen == sizeof(c->in))
			break;
		n = SSL_read(c->ssl, c->in + c->inlen,
		    (int)(sizeof(c->in) - c->inlen));
		if (n <= 0) {
			if (SSL_get_error(c->ssl, n) != SSL_ERROR_WANT_READ)
				dotsrv_drop(s, ci);	/* closed or broken */
			ERR_clear_error();
			break;
		}
		c->inlen += (size_t)n;
	}
	while (c->inlen >= 2) {
		size_t fl = (size_t)c->in[0] << 8 | c->in[1];

		if (c->inlen < 2 + fl)
			break;
		if (fl >= 2)
			s->last_id = (uint16_t)(c->in[2] << 8 | c->in[3]);
		s->last_conn = ci;
		if (s->queries < DOTSRV_QMAX && fl <= DOTSRV_QLEN) {
			s->q[s->queries].conn = ci;
			s->q[s->queries].len = fl;
			memcpy(s->q[s->queries].msg, c->in + 2, fl);
		}
		s->queries++;
		memmove(c->in, c->in + 2 + fl, c->inlen - 2 - fl);
		c->inlen -= 2 + fl;
	}
}

void
dotsrv_step(struct dotsrv *s)
{
	int i, fd;

	for (;;) {
		for (i = 0; i < DOTSRV_CONNS && s->c[i].fd != -1; i++)
			;
		if (i == DOTSRV_CONNS)
			break;
		if ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK)) == -1)
			break;
		s->accepted++;
		s->c[i].fd = fd;
		s->c[i].up = false;
		s->c[i].inlen = 0;
		if (!s->tls)
			continue;
		s->c[i].ssl = SSL_new(s->ctx);
		SSL_set_fd(s->c[i].ssl, fd);
		SSL_set_accept_state(s->c[i].ssl);
	}
	for (i = 0; i < DOTSRV_CONNS; i++) {
		struct dotsrv_conn *c = &s->c[i];

		if (c->fd == -1 || c->ssl == NULL)
			continue;
		if (!c->up) {
			int r = SSL_do_handshake(c->ssl);

			if (r == 1)
				c->up = true;
			else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_WRITE)
				dotsrv_drop(s, i);
			ERR_clear_error();
			continue;
		}
		conn_read(s, i);
	}
}

int
dotsrv_send(struct dotsrv *s, int conn, const uint8_t *msg, size_t len)
{
	uint8_t b[2 + 65535];
	struct dotsrv_conn *c;

	if (conn < 0 || conn >= DOTSRV_CONNS || len > 65535)
		return -1;
	c = &s->c[conn];
	if (c->fd == -1 || c->ssl == NULL || !c->up)
		return -1;
	b[0] = (uint8_t)(len >> 8);
	b[1] = (uint8_t)len;
	memcpy(b + 2, msg, len);
	return SSL_write(c->ssl, b, (int)(len + 2)) == (int)(len + 2) ? 0 : -1;
}

void
dotsrv_drop(struct dotsrv *s, int conn)
{
	struct dotsrv_conn *c = &s->c[conn];

	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->up = false;
	c->inlen = 0;
}

void
dotsrv_close(struct dotsrv *s)
{
	int i;

	for (i = 0; i < DOTSRV_CONNS; i++)
		if (s->c[i].fd != -1)
			dotsrv_drop(s, i);
	if (s->lfd != -1)
		close(s->lfd);
	s->lfd = -1;
	SSL_CTX_free(s->ctx);
	s->ctx = NULL;
}

/* A client query: RD, one question, OPT (4096 bytes) when opt. */
size_t
mkq(uint8_t *out, uint16_t id, const char *name, uint16_t qtype, bool opt)
{
	size_t n = 12, lab;
	const char *p = name, *dot;

	memset(out, 0, 12);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] = 0x01;
	out[5] = 1;
	out[11] = opt ? 1 : 0;
	while (*p != '\0') {
		dot = strchr(p, '.');
		lab = dot != NULL ? (size_t)(dot - p) : strlen(p);
		out[n++] = (uint8_t)lab;
		memcpy(out + n, p, lab);
		n += lab;
		p += lab + (dot != NULL ? 1 : 0);
	}
	out[n++] = 0;
	out[n++] = (uint8_t)(qtype >> 8);
	out[n++] = (uint8_t)qtype;
	out[n++] = 0;
	out[n++] = 1;
	if (opt) {
		static const uint8_t o[11] = { 0, 0, 41, 0x10, 0, 0, 0, 0, 0,
		    0, 0 };

		memcpy(out + n, o, sizeof(o));
		n += sizeof(o);
	}
	return n;
}

/* Where a message's question ends (uncompressed name at 12). */
size_t
qend(const uint8_t *m, size_t len)
{
	size_t n = 12;

	while (n < len && m[n] != 0)
		n += (size_t)m[n] + 1;
	return n + 5;
}

/*
 * The upstream's answer to query q: its ID, its question lower-cased, one
 * A record (203.0.113.1, ttl) pointing at the question name, and OPT when
 * opt. Returns the length. Not 192.0.2.1: its first two bytes look like
 * a pointer into the header, where the cache's check for names running
 * through TTLs reads the random wire ID, so such an answer is cached or
 * not by chance.
 */
size_t
mka(uint8_t *out, const uint8_t *q, size_t qlen, uint32_t ttl, bool opt)
{
	size_t qe = qend(q, qlen), i, n;
	static const uint8_t o[11] = { 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0,
	    0 };
	/* QR RD RA, one question, one answer; the record's name points at
	 * the question, then type A class IN, and (after the TTL) its data. */
	static const uint8_t hdr[10] = { 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0 };
	static const uint8_t rr[6] = { 0xc0, 12, 0, 1, 0, 1 };
	static const uint8_t rdata[6] = { 0, 4, 203, 0, 113, 1 };

	memcpy(out, q, qe);
	memcpy(out + 2, hdr, sizeof(hdr));
	out[11] = opt ? 1 : 0;
	for (i = 12; i < qe - 4; i++)
		out[i] = (uint8_t)tolower(out[i]);
	n = qe;
	memcpy(out + n, rr, sizeof(rr));
	n += sizeof(rr);
	out[n++] = (uint8_t)(ttl >> 24);
	out[n++] = (uint8_t)(ttl >> 16);
	out[n++] = (uint8_t)(ttl >> 8);
	out[n++] = (uint8_t)ttl;
	memcpy(out + n, rdata, sizeof(rdata));
	n += sizeof(rdata);
	if (opt) {
		memcpy(out + n, o, sizeof(o));
		n += sizeof(o);
	}
	return n;
}
