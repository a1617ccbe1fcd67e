/*
 * OpenSSL behind a small non-blocking interface (see tls.h). System layer;
 * the only file including an OpenSSL header. Owns the SSL_CTX, the per-
 * connection SSL objects and the session slots used for resumption.
 * Errors are drained from OpenSSL's queue into one line per connection.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct tls_ctx {
	SSL_CTX	*ctx;		/* owned */
	int	 slot_idx;	/* SSL ex_data index of the session slot */
};

struct tls_session {
	SSL_SESSION	*sess;	/* owned reference, or NULL */
};

struct tls_conn {
	SSL			*ssl;		/* owned */
	struct tls_session	*slot;		/* borrowed: the upstream's */
	uint8_t			 pins[4][32];
	size_t			 npins;
	bool			 closed_notify;
	char			 err[256];	/* last error line */
};

/* New tickets (TLS 1.3 sends them after the handshake) refresh the slot. */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	SSL_CTX *sctx = SSL_get_SSL_CTX(ssl);
	struct tls_ctx *c = SSL_CTX_get_app_data(sctx);
	struct tls_session *slot = SSL_get_ex_data(ssl, c->slot_idx);

	if (slot == NULL)
		return 0;
	SSL_SESSION_free(slot->sess);
	slot->sess = sess;
	return 1;	/* we keep the reference */
}

struct tls_ctx *
tls_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	struct tls_ctx *c;
	unsigned long e;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto fail;
	if (!SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION))
		goto fail;
	SSL_CTX_set_options(c->ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/* Read whole socket buffers, not a record header then its body:
	 * under load this takes reads per answer from 2 to about 0.2. */
	SSL_CTX_set_read_ahead(c->ctx, 1);
	SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(c->ctx, on_new_session);
	SSL_CTX_set_app_data(c->ctx, c);
	c->slot_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (c->slot_idx < 0)
		goto fail;
	if (ca_file != NULL && ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL) != 1) {
			e = ERR_peek_last_error();
			(void)snprintf(err, errlen, "cannot load CA file %s: %s",
			    ca_file, ERR_reason_error_string(e) ?
			    ERR_reason_error_string(e) : "unreadable");
			ERR_clear_error();
			goto fail_quiet;
		}
	} else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1)
		goto fail;
	return c;
fail:
	e = ERR_get_error();
	(void)snprintf(err, errlen, "TLS setup failed: %s",
	    e ? ERR_reason_error_string(e) : "unknown");
	ERR_clear_error();
fail_quiet:
	SSL_CTX_free(c->ctx);
	free(c);
	return NULL;
}

void
tls_ctx_free(struct tls_ctx *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ctx);
	free(c);
}

struct tls_session *
tls_session_new(void)
{
	return calloc(1, sizeof(struct tls_session));
}

void
tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	SSL_SESSION_free(s->sess);
	free(s);
}

struct tls_conn *
tls_conn_new(struct tls_ctx *c, int fd, const char *name,
    const uint8_t (*pins)[32], size_t npins, struct tls_session *slot)
{
	struct tls_conn *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (npins > 4)
		npins = 4;
	if (npins > 0)
		memcpy(t->pins, pins, npins * 32);
	t->npins = npins;
	t->slot = slot;
	ERR_clear_error();
	if ((t->ssl = SSL_new(c->ctx)) == NULL)
		goto fail;
	if (SSL_set_fd(t->ssl, fd) != 1)
		goto fail;
	SSL_set_ex_data(t->ssl, c->slot_idx, slot);
	if (name[0] != '\0') {
		/* SNI, and the name the certificate must carry (RFC 6125). */
		if (SSL_set_tlsext_host_name(t->ssl, name) != 1)
			goto fail;
		if (SSL_set1_host(t->ssl, name) != 1)
			goto fail;
		SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
	} else {
		/* Pins only: the pin is the authentication (RFC 8310 §8.1). */
		SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
	}
	if (slot != NULL && slot->sess != NULL &&
	    SSL_SESSION_is_resumable(slot->sess))
		(void)SSL_set_session(t->ssl, slot->sess);
	SSL_set_connect_state(t->ssl);
	return t;
fail:
	ERR_clear_error();
	SSL_free(t->ssl);
	free(t);
	return NULL;
}

void
tls_conn_free(struct tls_conn *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	free(t);
}

/* Drains OpenSSL's error queue and the verify result into t->err. */
static void
set_error(struct tls_conn *t, const char *what, int sslerr)
{
	char q[160] = "";
	unsigned long e;
	long vr = SSL_get_verify_result(t->ssl);
	size_t n = 0;

	while ((e = ERR_get_error()) != 0 && n + 2 < sizeof(q)) {
		const char *r = ERR_reason_error_string(e);
		int k = snprintf(q + n, sizeof(q) - n, "%s%s", n ? "; " : "",
		    r ? r : "?");

		if (k < 0)
			break;
		n += (size_t)k < sizeof(q) - n ? (size_t)k : sizeof(q) - n - 1;
	}
	if (sslerr == SSL_ERROR_SYSCALL && q[0] == '\0')
		(void)snprintf(q, sizeof(q), "%s", errno ? strerror(errno) :
		    "connection closed by peer");
	if (vr != X509_V_OK)
		(void)snprintf(t->err, sizeof(t->err),
		    "%s: certificate verify failed: %s (%s)", what,
		    X509_verify_cert_error_string(vr), q);
	else
		(void)snprintf(t->err, sizeof(t->err), "%s: %s", what,
		    q[0] ? q : "protocol error");
}

static enum tls_status
status_of(struct tls_conn *t, int r, const char *what)
{
	int e = SSL_get_error(t->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return TLS_CLOSED;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && errno == 0) {
			(void)snprintf(t->err, sizeof(t->err),
			    "%s: connection closed by peer", what);
			return TLS_CLOSED;
		}
		set_error(t, what, e);
		return TLS_ERROR;
	default:
		set_error(t, what, e);
		return TLS_ERROR;
	}
}

/* SHA-256 of the peer's SubjectPublicKeyInfo against the pin set. */
static bool
pins_match(struct tls_conn *t)
{
	uint8_t *der = NULL, md[SHA256_DIGEST_LENGTH];
	X509 *peer;
	size_t i;
	int len;
	bool ok = false;

	if ((peer = SSL_get1_peer_certificate(t->ssl)) == NULL)
		return false;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(peer), &der);
	if (len > 0) {
		SHA256(der, (size_t)len, md);
		for (i = 0; i < t->npins && !ok; i++)
			ok = CRYPTO_memcmp(md, t->pins[i], sizeof(md)) == 0;
	}
	OPENSSL_free(der);
	X509_free(peer);
	return ok;
}

enum tls_status
tls_handshake(struct tls_conn *t)
{
	enum tls_status s;
	int r;

	errno = 0;
	ERR_clear_error();
	r = SSL_do_handshake(t->ssl);
	if (r != 1) {
		s = status_of(t, r, "handshake");
		if (s == TLS_CLOSED) {
			set_error(t, "handshake", SSL_ERROR_SYSCALL);
			return TLS_ERROR;
		}
		return s;
	}
	/* Pins are checked on every handshake, resumed ones too: the peer
	 * certificate of a resumed session comes from the session. */
	if (t->npins > 0 && !pins_match(t)) {
		(void)snprintf(t->err, sizeof(t->err),
		    "handshake: certificate verify failed: SPKI pin mismatch%s",
		    SSL_session_reused(t->ssl) ? " (resumed session)" : "");
		if (t->slot != NULL) {
			SSL_SESSION_free(t->slot->sess);
			t->slot->sess = NULL;
		}
		return TLS_ERROR;
	}
	if (t->slot != NULL && t->slot->sess == NULL) {
		/* TLS 1.2: the session is known once the handshake is done. */
		t->slot->sess = SSL_get1_session(t->ssl);
	}
	return TLS_OK;
}

enum tls_status
tls_read(struct tls_conn *t, void *buf, size_t cap, size_t *n)
{
	int r;

	*n = 0;
	errno = 0;
	ERR_clear_error();
	r = SSL_read(t->ssl, buf, cap > 0x7fffffff ? 0x7fffffff : (int)cap);
	if (r > 0) {
		*n = (size_t)r;
		return TLS_OK;
	}
	return status_of(t, r, "read");
}

enum tls_status
tls_write(struct tls_conn *t, const void *buf, size_t len, size_t *n)
{
	int r;

	*n = 0;
	if (len == 0)
		return TLS_OK;
	errno = 0;
	ERR_clear_error();
	r = SSL_write(t->ssl, buf, len > 0x7fffffff ? 0x7fffffff : (int)len);
	if (r > 0) {
		*n = (size_t)r;
		return TLS_OK;
	}
	return status_of(t, r, "write");
}

void
tls_close_notify(struct tls_conn *t)
{
	if (t->closed_notify)
		return;
	t->closed_notify = true;
	ERR_clear_error();
	if (SSL_is_init_finished(t->ssl))
		(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
}

bool
tls_pending(const struct tls_conn *t)
{
	return SSL_has_pending(t->ssl) == 1;
}

bool
tls_resumed(const struct tls_conn *t)
{
	return SSL_session_reused(t->ssl) == 1;
}

const char *
tls_error(const struct tls_conn *t)
{
	return t->err[0] ? t->err : "no error";
}

const char *
tls_version(const struct tls_conn *t)
{
	return SSL_get_version(t->ssl);
}
