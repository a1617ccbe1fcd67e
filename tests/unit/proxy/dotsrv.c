/* The unit tests' DoT server (see dotsrv.h). */
#include "tests/unit/proxy/dotsrv.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

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
