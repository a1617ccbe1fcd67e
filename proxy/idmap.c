/*
 * Wire-ID map (see idmap.h). Pure layer. A direct table of 65536 slot
 * numbers gives O(1) lookups by ID; the slots themselves (handle and ID)
 * sit in a small array with a free list, so draining a connection visits
 * only cap entries.
 */
#include "idmap.h"

#include <errno.h>
#include <stdlib.h>

#include "errors.h"

struct idmap_slot {
	uint64_t	handle;
	uint64_t	stamp;
	uint16_t	id;
	bool		used;
	uint16_t	next_free;	/* index + 1; 0 ends the list */
};

struct idmap {
	uint16_t		 by_id[65536];	/* ID -> slot index + 1 */
	struct idmap_slot	*slots;		/* owned: cap entries */
	unsigned		 cap;
	unsigned		 count;
	uint16_t		 free_head;	/* index + 1 */
};

static void
idmap_reset(struct idmap *m)
{
	unsigned i;

	for (i = 0; i < m->cap; i++) {
		m->slots[i].used = false;
		m->slots[i].next_free = i + 1 < m->cap ? (uint16_t)(i + 2) : 0;
	}
	m->free_head = 1;
	m->count = 0;
}

struct idmap *
idmap_new(unsigned cap)
{
	struct idmap *m;

	if (cap == 0 || cap > 4096) {
		errno = EINVAL;
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if ((m->slots = calloc(cap, sizeof(*m->slots))) == NULL) {
		free(m);
		return NULL;
	}
	m->cap = cap;
	idmap_reset(m);
	return m;
}

void
idmap_free(struct idmap *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m);
}

int
idmap_add(struct idmap *m, uint64_t handle, uint64_t stamp,
    uint16_t (*rnd)(void *), void *rnd_arg, uint16_t *id)
{
	struct idmap_slot *s;
	uint16_t v;

	if (m->free_head == 0)
		return -E_TOOBIG;
	/* At most 4096 of 65536 IDs are taken, so this ends quickly. */
	do
		v = rnd(rnd_arg);
	while (m->by_id[v] != 0);
	s = &m->slots[m->free_head - 1];
	m->by_id[v] = m->free_head;
	m->free_head = s->next_free;
	s->handle = handle;
	s->stamp = stamp;
	s->id = v;
	s->used = true;
	m->count++;
	*id = v;
	return 0;
}

bool
idmap_find(const struct idmap *m, uint16_t id, uint64_t *handle,
    uint64_t *stamp)
{
	uint16_t i = m->by_id[id];

	if (i == 0)
		return false;
	*handle = m->slots[i - 1].handle;
	if (stamp != NULL)
		*stamp = m->slots[i - 1].stamp;
	return true;
}

void
idmap_remove(struct idmap *m, uint16_t id)
{
	uint16_t i = m->by_id[id];
	struct idmap_slot *s;

	if (i == 0)
		return;
	s = &m->slots[i - 1];
	m->by_id[id] = 0;
	s->used = false;
	s->next_free = m->free_head;
	m->free_head = i;
	m->count--;
}

unsigned
idmap_count(const struct idmap *m)
{
	return m->count;
}

bool
idmap_full(const struct idmap *m)
{
	return m->free_head == 0;
}

size_t
idmap_drain(struct idmap *m, uint64_t *out, size_t cap)
{
	size_t n = 0;
	unsigned i;

	for (i = 0; i < m->cap; i++) {
		struct idmap_slot *s = &m->slots[i];

		if (!s->used)
			continue;
		if (n < cap)
			out[n++] = s->handle;
		m->by_id[s->id] = 0;
	}
	idmap_reset(m);
	return n;
}

size_t
idmap_expire(struct idmap *m, uint64_t before, uint64_t *oldest)
{
	size_t n = 0;
	unsigned i;

	*oldest = UINT64_MAX;
	for (i = 0; i < m->cap; i++) {
		struct idmap_slot *s = &m->slots[i];

		if (!s->used)
			continue;
		if (s->stamp < before) {
			idmap_remove(m, s->id);
			n++;
		} else if (s->stamp < *oldest)
			*oldest = s->stamp;
	}
	return n;
}
