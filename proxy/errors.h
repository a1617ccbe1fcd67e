/*
 * Project error codes. Functions return 0 on success and a negative value on
 * failure: either -errno or -E_<name> from here. The E_ values start above
 * any errno so the two never collide. proxy_strerror() names either kind.
 */
#ifndef PROXY_ERRORS_H
#define PROXY_ERRORS_H

enum proxy_err {
	E_BASE = 4096,
	E_MALFORMED,	/* bytes that do not parse as DNS */
	E_TOOBIG,	/* does not fit the buffer or a protocol limit */
	E_DROP,		/* not worth an answer: too short or QR set */
	E_FORMERR,	/* answer FORMERR */
	E_NOTIMP,	/* answer NOTIMP (opcode other than QUERY) */
	E_BADVERS,	/* answer BADVERS (EDNS version above 0) */
	E_MISMATCH,	/* answer does not match the question sent */
	E_UPSTREAM,	/* no upstream could answer */
	E_TIMEOUT,	/* deadline passed */
	E_TLS,		/* TLS protocol failure */
	E_VERIFY,	/* certificate or pin check failed */
	E_USAGE,	/* bad option or configuration */
	E_GONE,		/* the object ended its life in this call */
	E_LAST
};

/* Returns a static string for a negative error (either kind) or 0. */
const char *proxy_strerror(int err);

#endif
