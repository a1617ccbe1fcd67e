/*
 * DNS wire format for the proxy: a bounds-checked read cursor with a sticky
 * error, name validation (RFC 9267), query and answer parsing down to the
 * OPT record, and the three messages the proxy writes itself (the upstream
 * query, the client's answer, an error answer). Pure layer: no I/O, no
 * malloc, no globals, no logging; every length check is written so that it
 * cannot overflow, and every loop is bounded by the bytes left.
 */
#include "dns.h"

#include <stddef.h>
#include <string.h>

#include "errors.h"

#define OPT_RR_LEN	11	/* root owner, type, class, TTL, rdlen */
#define OPT_DO		0x8000	/* DO bit, low 16 bits of the OPT TTL */

void
dns_cur_init(struct dns_cur *c, const uint8_t *p, size_t len)
{
	c->p = p;
	c->len = len;
	c->off = 0;
	c->err = 0;
}

/* True when n more bytes can be read; sets the sticky error otherwise. */
static bool
cur_need(struct dns_cur *c, size_t n)
{
	if (c->err != 0)
		return false;
	if (n > c->len - c->off) {
		c->err = -E_MALFORMED;
		return false;
	}
	return true;
}

uint8_t
dns_cur_u8(struct dns_cur *c)
{
	if (!cur_need(c, 1))
		return 0;
	return c->p[c->off++];
}

uint16_t
dns_cur_u16(struct dns_cur *c)
{
	uint16_t v;

	if (!cur_need(c, 2))
		return 0;
	v = (uint16_t)(c->p[c->off] << 8 | c->p[c->off + 1]);
	c->off += 2;
	return v;
}

uint32_t
dns_cur_u32(struct dns_cur *c)
{
	uint32_t v;

	if (!cur_need(c, 4))
		return 0;
	v = (uint32_t)c->p[c->off] << 24 | (uint32_t)c->p[c->off + 1] << 16 |
	    (uint32_t)c->p[c->off + 2] << 8 | (uint32_t)c->p[c->off + 3];
	c->off += 4;
	return v;
}

void
dns_cur_skip(struct dns_cur *c, size_t n)
{
	if (!cur_need(c, n))
		return;
	c->off += n;
}

/*
 * Each compression pointer must point strictly before the previous jump
 * target (before the name's own start for the first one) and never into
 * the header, so targets strictly decrease and no loop of any shape is
 * possible; the hop cap is a second, cheaper bound. After a jump, every
 * byte read must also lie before the pointer that jumped there: a real
 * compressor only points at names written earlier, and this keeps a name
 * from running over its own pointer or into later records (which would
 * change its meaning when the proxy cuts the message at the OPT).
 */
void
dns_cur_name(struct dns_cur *c, uint8_t *out, size_t *outlen)
{
	size_t pos, minptr, bound, end = 0, total = 0, target, seg, done = 0;
	unsigned hops = 0;
	uint8_t b;

	if (c->err != 0)
		return;
	/* Labels are copied out a run at a time: seg is where the bytes
	 * since the last jump start, done how much of the name is out. */
	pos = minptr = seg = c->off;
	bound = c->len;
	for (;;) {
		if (pos >= bound)
			goto bad;
		b = c->p[pos];
		if ((b & 0xc0) == 0xc0) {
			if (1 > bound - pos - 1)
				goto bad;
			target = (size_t)(b & 0x3f) << 8 | c->p[pos + 1];
			if (target >= minptr || target < DNS_HDR_LEN)
				goto bad;
			if (++hops > DNS_PTR_HOPS)
				goto bad;
			if (end == 0)
				end = pos + 2;
			if (out != NULL)
				memcpy(out + done, c->p + seg, total - done);
			done = total;
			bound = pos;
			minptr = pos = seg = target;
			continue;
		}
		if ((b & 0xc0) != 0)	/* 0x40 extended, 0x80 reserved */
			goto bad;
		/*
		 * b <= 63 here and total <= 254 (root room kept by the check
		 * below), so this cannot wrap: a label must leave room for
		 * the root label after it.
		 */
		if (b != 0 && (size_t)b + 2 > DNS_NAME_MAX - total)
			goto bad;
		if (b > bound - pos - 1)
			goto bad;
		total += (size_t)b + 1;
		pos += (size_t)b + 1;
		if (b == 0)
			break;
	}
	if (out != NULL)
		memcpy(out + done, c->p + seg, total - done);
	c->off = end != 0 ? end : pos;
	if (outlen != NULL)
		*outlen = total;
	return;
bad:
	c->err = -E_MALFORMED;
}

/* Which section a record is in, for the OPT placement rule. */
enum dns_section {
	SEC_AN = 0,
	SEC_NS,
	SEC_AR
};

/*
 * Walks the options of an OPT rdata (rdlen bytes at the cursor), which must
 * fill it exactly, and records edns-tcp-keepalive. Other options, padding
 * included, are skipped.
 */
static void
opt_options(struct dns_cur *c, size_t rdlen, struct dns_info *info)
{
	struct dns_cur o;
	uint16_t code, olen;

	if (!cur_need(c, rdlen))
		return;
	dns_cur_init(&o, c->p + c->off, rdlen);
	while (o.err == 0 && o.off < o.len) {
		code = dns_cur_u16(&o);
		olen = dns_cur_u16(&o);
		if (o.err == 0 && code == DNS_OPT_KEEPALIVE && olen == 2 &&
		    o.len - o.off >= 2) {
			info->keepalive = (int)((unsigned)o.p[o.off] << 8 |
			    o.p[o.off + 1]);
		}
		dns_cur_skip(&o, olen);
	}
	if (o.err != 0) {
		c->err = o.err;
		return;
	}
	c->off += rdlen;
}

/*
 * Reads one resource record in section sec. The OPT record is only valid
 * once, in the additional section, with the root as owner; its fields go
 * to info.
 */
static void
parse_rr(struct dns_cur *c, enum dns_section sec, struct dns_info *info)
{
	size_t start = c->off, ownlen = 0;
	uint16_t type, class, rdlen;
	uint32_t ttl;

	dns_cur_name(c, NULL, &ownlen);
	type = dns_cur_u16(c);
	class = dns_cur_u16(c);
	ttl = dns_cur_u32(c);
	rdlen = dns_cur_u16(c);
	if (c->err != 0)
		return;
	if (type != DNS_TYPE_OPT) {
		dns_cur_skip(c, rdlen);
		info->opt_last = false;
		return;
	}
	if (sec != SEC_AR || info->has_opt || ownlen != 1) {
		c->err = -E_MALFORMED;
		return;
	}
	info->keepalive = -1;
	opt_options(c, rdlen, info);
	if (c->err != 0)
		return;
	info->has_opt = true;
	info->opt_off = start;
	info->opt_end = c->off;
	info->opt_last = true;
	info->udp_size = class;
	info->ext_rcode = (uint8_t)(ttl >> 24);
	info->edns_version = (uint8_t)(ttl >> 16);
	info->do_bit = (ttl & OPT_DO) != 0;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The header's ID, flags and counts from its DNS_HDR_LEN bytes at h. */
static void
read_header(const uint8_t *h, struct dns_info *info)
{
	info->id = get16(h);
	info->flags = get16(h + 2);
	info->qdcount = get16(h + 4);
	info->ancount = get16(h + 6);
	info->nscount = get16(h + 8);
	info->arcount = get16(h + 10);
}

/* Header and counts; a cursor with fewer than DNS_HDR_LEN bytes left fails. */
static void
parse_header(struct dns_cur *c, struct dns_info *info)
{
	if (!cur_need(c, DNS_HDR_LEN))
		return;
	read_header(c->p + c->off, info);
	c->off += DNS_HDR_LEN;
}

/* The single question; on failure info's question stays empty. */
static void
parse_question(struct dns_cur *c, struct dns_info *info)
{
	size_t namelen = 0;
	uint16_t qtype, qclass;

	/* Written in place: qname_len stays 0 unless it all reads. */
	dns_cur_name(c, info->qname, &namelen);
	qtype = dns_cur_u16(c);
	qclass = dns_cur_u16(c);
	if (c->err != 0)
		return;
	info->qname_len = namelen;
	info->qtype = qtype;
	info->qclass = qclass;
	info->question_end = c->off;
}

/*
 * Every record of the three sections. A count never bounds the loop on
 * its own: each record takes at least 11 bytes and the loop also stops
 * when the bytes run out, which is then an error.
 */
static void
parse_records(struct dns_cur *c, struct dns_info *info)
{
	const uint16_t counts[3] = { info->ancount, info->nscount,
	    info->arcount };
	unsigned i, sec;

	for (sec = SEC_AN; sec <= SEC_AR && c->err == 0; sec++) {
		for (i = 0; i < counts[sec] && c->err == 0; i++) {
			if (c->off >= c->len) {
				c->err = -E_MALFORMED;
				break;
			}
			parse_rr(c, (enum dns_section)sec, info);
		}
	}
	if (c->err == 0 && c->off != c->len)
		c->err = -E_MALFORMED;	/* bytes past the last record */
}

/* Everything but the name's bytes, which count only up to qname_len. */
static void
info_reset(struct dns_info *info)
{
	memset(info, 0, offsetof(struct dns_info, qname));
	memset(&info->qname_len, 0,
	    sizeof(*info) - offsetof(struct dns_info, qname_len));
	info->keepalive = -1;
}

int
dns_parse_query(const uint8_t *msg, size_t len, struct dns_info *info)
{
	struct dns_cur c;

	info_reset(info);
	if (len < DNS_HDR_LEN)
		return -E_DROP;
	dns_cur_init(&c, msg, len);
	parse_header(&c, info);
	if (info->flags & DNS_FLAG_QR)
		return -E_DROP;
	if (DNS_OPCODE(info->flags) != 0) {
		struct dns_info save;

		/* Echo the question in the NOTIMP answer when it reads, and
		 * the client's EDNS when the rest reads too. */
		if (info->qdcount == 1)
			parse_question(&c, info);
		if (c.err == 0 && info->qdcount <= 1) {
			save = *info;
			parse_records(&c, info);
			if (c.err != 0)
				*info = save;
		}
		return -E_NOTIMP;
	}
	if (info->qdcount != 1)
		return -E_FORMERR;
	parse_question(&c, info);
	if (c.err != 0)
		return -E_FORMERR;
	parse_records(&c, info);
	if (c.err != 0)
		return -E_FORMERR;
	if (info->has_opt && info->edns_version > 0)
		return -E_BADVERS;
	return 0;
}

int
dns_parse_answer(const uint8_t *msg, size_t len, struct dns_info *info)
{
	struct dns_cur c;

	info_reset(info);
	if (len < DNS_HDR_LEN)
		return -E_MALFORMED;
	dns_cur_init(&c, msg, len);
	parse_header(&c, info);
	if (!(info->flags & DNS_FLAG_QR))
		return -E_MALFORMED;
	if (info->qdcount == 0 && dns_answer_questionless(info)) {
		/* FORMERR, NOTIMP, REFUSED may come without the question. */
		info->question_end = DNS_HDR_LEN;
		parse_records(&c, info);
		if (c.err != 0 || info->ext_rcode != 0)
			return -E_MALFORMED;
		return 0;
	}
	if (info->qdcount != 1)
		return -E_MALFORMED;
	parse_question(&c, info);
	parse_records(&c, info);
	return c.err != 0 ? -E_MALFORMED : 0;
}

int
dns_parse_stored(const uint8_t *msg, size_t len, size_t qname_len,
    struct dns_info *info)
{
	const uint8_t *q = msg + DNS_HDR_LEN;

	info_reset(info);
	if (qname_len == 0 || qname_len > DNS_NAME_MAX ||
	    len < DNS_HDR_LEN + qname_len + 4)
		return -E_MALFORMED;
	read_header(msg, info);
	if (!(info->flags & DNS_FLAG_QR) || info->qdcount != 1)
		return -E_MALFORMED;
	memcpy(info->qname, q, qname_len);
	info->qname_len = qname_len;
	info->qtype = get16(q + qname_len);
	info->qclass = get16(q + qname_len + 2);
	info->question_end = DNS_HDR_LEN + qname_len + 4;
	return 0;
}

bool
dns_answer_questionless(const struct dns_info *a)
{
	unsigned rcode = DNS_RCODE(a->flags);

	return (a->flags & DNS_FLAG_QR) && a->qdcount == 0 &&
	    (rcode == DNS_RCODE_FORMERR || rcode == DNS_RCODE_NOTIMP ||
	    rcode == DNS_RCODE_REFUSED);
}

static uint8_t
fold(uint8_t ch)
{
	return ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch + ('a' - 'A')) : ch;
}

/* Case-insensitive compare of n bytes of two wire names. Label length
 * bytes are <= 63, below 'A', so folding never touches them. */
static bool
name_bytes_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i;

	/* Names mostly come back in the case they were asked in. */
	if (memcmp(a, b, n) == 0)
		return true;
	for (i = 0; i < n; i++)
		if (fold(a[i]) != fold(b[i]))
			return false;
	return true;
}

bool
dns_question_equal(const struct dns_info *a, const struct dns_info *b)
{
	if (dns_answer_questionless(a) || dns_answer_questionless(b))
		return true;
	return a->qname_len == b->qname_len && a->qname_len > 0 &&
	    a->qtype == b->qtype && a->qclass == b->qclass &&
	    name_bytes_equal(a->qname, b->qname, a->qname_len);
}

uint16_t
dns_get_id(const uint8_t *msg)
{
	return (uint16_t)(msg[0] << 8 | msg[1]);
}

void
dns_set_id(uint8_t *msg, uint16_t id)
{
	msg[0] = (uint8_t)(id >> 8);
	msg[1] = (uint8_t)id;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
put_header(uint8_t *p, uint16_t id, uint16_t flags, uint16_t qd,
    uint16_t an, uint16_t ns, uint16_t ar)
{
	put16(p, id);
	put16(p + 2, flags);
	put16(p + 4, qd);
	put16(p + 6, an);
	put16(p + 8, ns);
	put16(p + 10, ar);
}

/* Writes the question of info at p; returns the bytes written. */
static size_t
put_question(uint8_t *p, const struct dns_info *info)
{
	memcpy(p, info->qname, info->qname_len);
	put16(p + info->qname_len, info->qtype);
	put16(p + info->qname_len + 2, info->qclass);
	return info->qname_len + 4;
}

/* Writes an OPT RR of ours: root owner, our UDP size, version 0. */
static void
put_opt(uint8_t *p, uint8_t ext_rcode, bool do_bit, uint16_t rdlen)
{
	p[0] = 0;
	put16(p + 1, DNS_TYPE_OPT);
	put16(p + 3, DNS_EDNS_UDP);
	put32(p + 5, (uint32_t)ext_rcode << 24 | (do_bit ? OPT_DO : 0));
	put16(p + 9, rdlen);
}

int
dns_build_query(const uint8_t *query, size_t len, const struct dns_info *q,
    uint16_t id, bool keepalive, bool pad, uint8_t *out, size_t cap,
    size_t *outlen)
{
	const uint16_t keep = DNS_FLAG_RD | DNS_FLAG_AD | DNS_FLAG_CD;
	size_t n, rdlen = 0, padlen = 0, total;

	/* The question comes from q, which the parser validated. */
	(void)query;
	(void)len;
	if (q->qname_len == 0 || q->qname_len > DNS_NAME_MAX)
		return -E_MALFORMED;
	if (keepalive)
		rdlen += 4;
	total = DNS_HDR_LEN + q->qname_len + 4 + OPT_RR_LEN + rdlen;
	if (pad) {
		/* RFC 8467: the option header counts toward the block. */
		padlen = (DNS_PAD_BLOCK - (total + 4) % DNS_PAD_BLOCK) %
		    DNS_PAD_BLOCK;
		rdlen += 4 + padlen;
		total += 4 + padlen;
	}
	if (total > cap)
		return -E_TOOBIG;
	put_header(out, id, q->flags & keep, 1, 0, 0, 1);
	n = DNS_HDR_LEN;
	n += put_question(out + n, q);
	put_opt(out + n, 0, q->do_bit, (uint16_t)rdlen);
	n += OPT_RR_LEN;
	if (keepalive) {
		put16(out + n, DNS_OPT_KEEPALIVE);
		put16(out + n + 2, 0);
		n += 4;
	}
	if (pad) {
		put16(out + n, DNS_OPT_PADDING);
		put16(out + n + 2, (uint16_t)padlen);
		memset(out + n + 4, 0, padlen);
		n += 4 + padlen;
	}
	*outlen = n;
	return 0;
}

/* Skips one resource record; the message was validated by the parser. */
static void
skip_rr(struct dns_cur *c)
{
	uint16_t rdlen;

	dns_cur_name(c, NULL, NULL);
	dns_cur_skip(c, 8);
	rdlen = dns_cur_u16(c);
	dns_cur_skip(c, rdlen);
}

/*
 * Counts the additional records before the OPT RR of a parsed answer, for
 * cutting the message at the OPT. Returns -1 if the walk goes wrong.
 */
static int
ar_before_opt(const uint8_t *ans, size_t anslen, const struct dns_info *a)
{
	struct dns_cur c;
	unsigned i, skip = (unsigned)a->ancount + a->nscount;
	int n = 0;

	dns_cur_init(&c, ans, anslen);
	c.off = a->question_end;
	for (i = 0; i < skip && c.err == 0 && c.off < a->opt_off; i++)
		skip_rr(&c);
	while (c.err == 0 && c.off < a->opt_off) {
		skip_rr(&c);
		n++;
	}
	if (c.err != 0 || c.off != a->opt_off || n >= a->arcount)
		return -1;
	return n;
}

/*
 * Rewrites, in the copy at out, the OPT RR of an answer that is followed by
 * other records (say a TSIG): our UDP size, the answer's extended RCODE and
 * DO, version 0, and the options replaced by one Padding option of the
 * same length so no offset moves.
 */
static int
rewrite_opt(uint8_t *out, size_t outlen, const struct dns_info *a)
{
	struct dns_cur c;
	size_t rdoff;
	uint16_t rdlen;

	dns_cur_init(&c, out, outlen);
	c.off = a->opt_off;
	dns_cur_name(&c, NULL, NULL);
	dns_cur_skip(&c, 8);
	rdlen = dns_cur_u16(&c);
	rdoff = c.off;
	dns_cur_skip(&c, rdlen);
	if (c.err != 0)
		return -E_MALFORMED;
	put16(out + rdoff - 8, DNS_EDNS_UDP);
	put32(out + rdoff - 6, (uint32_t)a->ext_rcode << 24 |
	    (a->do_bit ? OPT_DO : 0));
	if (rdlen >= 4) {
		put16(out + rdoff, DNS_OPT_PADDING);
		put16(out + rdoff + 2, (uint16_t)(rdlen - 4));
		memset(out + rdoff + 4, 0, (size_t)rdlen - 4);
	}
	return 0;
}

/*
 * True if a compression pointer anywhere in the answer outside the OPT RR
 * could point into the OPT RR's bytes, which a rewrite changes. Every byte
 * pair is checked, not only the names: a false alarm only costs the cut
 * instead of the rewrite, a miss would change a name.
 */
static bool
points_into_opt(const uint8_t *ans, size_t anslen, const struct dns_info *a)
{
	size_t i, t;

	for (i = a->question_end; i + 1 < anslen; i++) {
		if (i >= a->opt_off && i < a->opt_end)
			continue;
		if ((ans[i] & 0xc0) != 0xc0)
			continue;
		t = (size_t)(ans[i] & 0x3f) << 8 | ans[i + 1];
		if (t >= a->opt_off && t < a->opt_end)
			return true;
	}
	return false;
}

/*
 * The body of dns_build_answer once the questions matched. With
 * allow_rewrite, an OPT that other records follow is rewritten in place
 * for an EDNS client; the result is parsed again and -E_MALFORMED
 * returned if a later name pointed into the OPT bytes we changed, so the
 * caller can retry with the OPT and what follows it cut instead.
 */
static int
answer_copy(const uint8_t *ans, size_t anslen, const struct dns_info *a,
    const uint8_t *query, const struct dns_info *q, bool allow_rewrite,
    size_t limit, uint8_t *out, size_t cap, size_t *outlen, bool *truncated)
{
	size_t body_off, body_len, qsec_len, total, n;
	uint16_t flags = a->flags, arcount = a->arcount;
	bool append_opt = false, rewrite = false;
	struct dns_info chk;
	int before;

	qsec_len = q->question_end - DNS_HDR_LEN;
	body_off = a->question_end;
	body_len = anslen - body_off;
	if (a->has_opt && a->opt_last) {
		body_len = a->opt_off - body_off;
		arcount--;
		append_opt = q->has_opt;
	} else if (a->has_opt && q->has_opt && allow_rewrite &&
	    !points_into_opt(ans, anslen, a)) {
		rewrite = true;
	} else if (a->has_opt) {
		/* Cut the OPT and the records after it (say a TSIG). */
		if ((before = ar_before_opt(ans, anslen, a)) < 0)
			return -E_MALFORMED;
		body_len = a->opt_off - body_off;
		arcount = (uint16_t)before;
		append_opt = q->has_opt;
	} else {
		append_opt = q->has_opt;
	}
	if (append_opt)
		arcount++;
	if (!q->has_opt && a->ext_rcode != 0)
		flags = (uint16_t)((flags & ~0xfu) | DNS_RCODE_SERVFAIL);

	total = DNS_HDR_LEN + qsec_len + body_len +
	    (append_opt ? OPT_RR_LEN : 0);
	if (total > limit || total > cap) {
		total = DNS_HDR_LEN + qsec_len + (q->has_opt ? OPT_RR_LEN : 0);
		if (total > cap)
			return -E_TOOBIG;
		put_header(out, q->id, flags | DNS_FLAG_TC, 1, 0, 0,
		    q->has_opt ? 1 : 0);
		memcpy(out + DNS_HDR_LEN, query + DNS_HDR_LEN, qsec_len);
		if (q->has_opt)
			put_opt(out + DNS_HDR_LEN + qsec_len, a->ext_rcode,
			    a->do_bit, 0);
		*outlen = total;
		*truncated = true;
		return 0;
	}
	put_header(out, q->id, flags, 1, a->ancount, a->nscount, arcount);
	n = DNS_HDR_LEN;
	memcpy(out + n, query + DNS_HDR_LEN, qsec_len);
	n += qsec_len;
	if (body_len > 0)
		memcpy(out + n, ans + body_off, body_len);
	n += body_len;
	if (append_opt) {
		put_opt(out + n, a->ext_rcode, a->do_bit, 0);
		n += OPT_RR_LEN;
	}
	if (rewrite && (rewrite_opt(out, n, a) != 0 ||
	    dns_parse_answer(out, n, &chk) != 0))
		return -E_MALFORMED;
	*outlen = n;
	return 0;
}

int
dns_build_answer(const uint8_t *ans, size_t anslen,
    const struct dns_info *a, const uint8_t *query, size_t qlen,
    const struct dns_info *q, size_t limit, uint8_t *out, size_t cap,
    size_t *outlen, bool *truncated)
{
	int rc;

	*truncated = false;
	/* An error without a question: the error, to the client's question
	 * and with the client's EDNS. */
	if (dns_answer_questionless(a))
		return dns_build_error(q, DNS_RCODE(a->flags), out, cap, outlen);
	/*
	 * Both questions are uncompressed at offset 12 (a pointer may not
	 * point into the header) and equal but for case, so the client's
	 * question bytes replace the answer's without moving any offset
	 * that a compression pointer in the records refers to. Flipping
	 * the case of a letter cannot change how a pointer into the
	 * question reads either: as a length byte every letter has the
	 * 0x40 bit set, so it is invalid in both cases.
	 */
	if (q->qname_len == 0 || q->question_end > qlen ||
	    q->question_end < DNS_HDR_LEN ||
	    a->question_end != q->question_end || a->question_end > anslen ||
	    q->question_end - DNS_HDR_LEN != q->qname_len + 4 ||
	    !dns_question_equal(a, q))
		return -E_MISMATCH;
	rc = answer_copy(ans, anslen, a, query, q, true, limit, out, cap,
	    outlen, truncated);
	if (rc == -E_MALFORMED)
		rc = answer_copy(ans, anslen, a, query, q, false, limit, out,
		    cap, outlen, truncated);
	return rc;
}

int
dns_build_error(const struct dns_info *q, unsigned rcode, uint8_t *out,
    size_t cap, size_t *outlen)
{
	bool opt = q->has_opt || rcode > 0xf;
	uint16_t flags;
	size_t n, total;

	if (rcode > 0xfff || q->qname_len > DNS_NAME_MAX)
		return -E_MALFORMED;
	total = DNS_HDR_LEN + (q->qname_len != 0 ? q->qname_len + 4 : 0) +
	    (opt ? OPT_RR_LEN : 0);
	if (total > cap)
		return -E_TOOBIG;
	flags = (uint16_t)(DNS_FLAG_QR | (q->flags & 0x7800) |
	    (q->flags & DNS_FLAG_RD) | DNS_FLAG_RA | (rcode & 0xf));
	put_header(out, q->id, flags, q->qname_len != 0 ? 1 : 0, 0, 0,
	    opt ? 1 : 0);
	n = DNS_HDR_LEN;
	if (q->qname_len != 0)
		n += put_question(out + n, q);
	if (opt) {
		put_opt(out + n, (uint8_t)(rcode >> 4), q->do_bit, 0);
		n += OPT_RR_LEN;
	}
	*outlen = n;
	return 0;
}

size_t
dns_client_limit(const struct dns_info *q)
{
	if (!q->has_opt || q->udp_size < DNS_UDP_MIN)
		return DNS_UDP_MIN;
	return q->udp_size;
}

/*
 * Offsets of the labels of a wire name, at most DNS_NAME_MAX / 2 of them.
 * Returns the label count, or -1 if the name is not well formed within len.
 */
static int
name_label_offsets(const uint8_t *name, size_t len, size_t *offs)
{
	size_t pos = 0;
	int n = 0;

	while (pos < len && name[pos] != 0) {
		if (name[pos] > DNS_LABEL_MAX || name[pos] >= len - pos)
			return -1;
		if (offs != NULL)
			offs[n] = pos;
		n++;
		pos += (size_t)name[pos] + 1;
	}
	if (pos != len - 1 || len == 0)
		return -1;	/* no root, or bytes after it */
	return n;
}

bool
dns_name_in_zone(const uint8_t *name, size_t len, const uint8_t *zone,
    size_t zlen)
{
	size_t offs[DNS_NAME_MAX / 2 + 1];
	int n, z;

	if (len > DNS_NAME_MAX || zlen > DNS_NAME_MAX)
		return false;
	if ((n = name_label_offsets(name, len, offs)) < 0 ||
	    (z = name_label_offsets(zone, zlen, NULL)) < 0 || z > n)
		return false;
	if (z == 0)
		return true;
	/* The last z labels of name, root included, must equal zone. */
	if (len - offs[n - z] < zlen)
		return false;
	return name_bytes_equal(name + offs[n - z], zone, zlen);
}

unsigned
dns_name_labels(const uint8_t *name, size_t len)
{
	int n;

	if (len > DNS_NAME_MAX)
		return 0;
	n = name_label_offsets(name, len, NULL);
	return n < 0 ? 0 : (unsigned)n;
}

int
dns_name_from_text(const char *text, uint8_t *out, size_t *outlen)
{
	size_t lab = 0, n = 1, i;	/* out[lab]: this label's length */
	const char *s;

	if (text == NULL || text[0] == '\0')
		return -E_MALFORMED;
	if (strcmp(text, ".") == 0) {
		out[0] = 0;
		*outlen = 1;
		return 0;
	}
	for (s = text; ; s++) {
		if (*s == '.' || *s == '\0') {
			i = n - lab - 1;
			if (i == 0) {
				/* Only the end, after a dot, may be empty. */
				if (*s != '\0' || s == text)
					return -E_MALFORMED;
				break;
			}
			if (i > DNS_LABEL_MAX)
				return -E_MALFORMED;
			out[lab] = (uint8_t)i;
			lab = n++;
			if (*s == '\0')
				break;
			continue;
		}
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f ||
		    *s == '\\')
			return -E_MALFORMED;
		/* This byte at n and the root after it must fit. */
		if (n + 2 > DNS_NAME_MAX)
			return -E_MALFORMED;
		out[n++] = (uint8_t)*s;
	}
	out[lab] = 0;
	*outlen = lab + 1;
	return 0;
}

static bool
text_plain(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

int
dns_name_to_text(const uint8_t *name, size_t len, char *out, size_t cap)
{
	size_t pos = 0, n = 0, i;
	uint8_t lab, ch;

	if (len > DNS_NAME_MAX || name_label_offsets(name, len, NULL) < 0)
		return -E_MALFORMED;
	if (name[0] == 0) {
		if (cap < 2)
			return -E_TOOBIG;
		out[0] = '.';
		out[1] = '\0';
		return 0;
	}
	while ((lab = name[pos]) != 0) {
		for (i = 1; i <= lab; i++) {
			ch = name[pos + i];
			if (text_plain(ch)) {
				if (1 > cap - n)
					return -E_TOOBIG;
				out[n++] = (char)ch;
				continue;
			}
			if (4 > cap - n)
				return -E_TOOBIG;
			out[n++] = '\\';
			out[n++] = (char)('0' + ch / 100);
			out[n++] = (char)('0' + ch / 10 % 10);
			out[n++] = (char)('0' + ch % 10);
		}
		if (1 > cap - n)
			return -E_TOOBIG;
		out[n++] = '.';
		pos += (size_t)lab + 1;
	}
	if (1 > cap - n)
		return -E_TOOBIG;
	out[n] = '\0';
	return 0;
}
