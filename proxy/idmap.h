/*
 * The wire-ID map of one upstream connection: which query handle each
 * outstanding 16-bit message ID belongs to. IDs are drawn at random from a
 * source the caller gives (getrandom in the proxy, a fixed sequence in
 * tests) and are unique among the IDs outstanding on the connection
 * (RFC 7766 §7). Pure: no I/O, no globals.
 */
#ifndef PROXY_IDMAP_H
#define PROXY_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct idmap;

/* A map for at most cap (1..4096) outstanding IDs. NULL, errno set. */
struct idmap	*idmap_new(unsigned cap);
void		 idmap_free(struct idmap *);
/*
 * Draws IDs from rnd until one is free, records handle under it and sets
 * *id, with stamp kept beside it. Returns 0, or -E_TOOBIG when cap IDs are outstanding.
 */
int		 idmap_add(struct idmap *, uint64_t handle, uint64_t stamp,
		    uint16_t (*rnd)(void *), void *rnd_arg, uint16_t *id)
		    __attribute__((warn_unused_result));
/* True, with *handle and (if not NULL) *stamp set, if id is outstanding.
 * stamp is the caller's value from idmap_add (the send time, say). */
bool		 idmap_find(const struct idmap *, uint16_t id, uint64_t *handle,
		    uint64_t *stamp);
/* Forgets id (no-op if it is not outstanding). */
void		 idmap_remove(struct idmap *, uint16_t id);
unsigned	 idmap_count(const struct idmap *);
bool		 idmap_full(const struct idmap *);
/*
 * Forgets the IDs whose stamp is below before (their queries have timed
 * out), returns how many, and sets *oldest to the smallest stamp left
 * (UINT64_MAX when none is left).
 */
size_t		 idmap_expire(struct idmap *, uint64_t before, uint64_t *oldest);
/* Forgets every ID, writing up to cap of their handles to out; returns how
 * many were written. */
size_t		 idmap_drain(struct idmap *, uint64_t *out, size_t cap);

#endif
