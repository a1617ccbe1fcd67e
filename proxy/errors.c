/*
 * Names for the project's error codes and for -errno values. Pure layer.
 */
#include "errors.h"

#include <string.h>

const char *
proxy_strerror(int err)
{
	static const char *const names[E_LAST - E_BASE] = {
		[E_MALFORMED - E_BASE] = "malformed message",
		[E_TOOBIG - E_BASE] = "message too big",
		[E_DROP - E_BASE] = "dropped",
		[E_FORMERR - E_BASE] = "format error",
		[E_NOTIMP - E_BASE] = "not implemented",
		[E_BADVERS - E_BASE] = "bad EDNS version",
		[E_MISMATCH - E_BASE] = "answer does not match the question",
		[E_UPSTREAM - E_BASE] = "no upstream answered",
		[E_TIMEOUT - E_BASE] = "timed out",
		[E_TLS - E_BASE] = "TLS failure",
		[E_VERIFY - E_BASE] = "certificate verification failed",
		[E_USAGE - E_BASE] = "bad usage",
		[E_GONE - E_BASE] = "closed",
	};
	int e = -err;

	if (err >= 0)
		return "success";
	if (e > E_BASE && e < E_LAST && names[e - E_BASE] != NULL)
		return names[e - E_BASE];
	return strerror(e);
}
