/*
 * The pure part of dotproxy-cni: the network configuration a runtime
 * passes on stdin (CNI spec 1.0.0) turned into a rules_spec plus the pod
 * selection settings, CNI_ARGS, the pod-selection decision, the version
 * list and the error object of the spec. JSON through jansson; no I/O, no
 * globals.
 */
#ifndef INIT_CNI_CONF_H
#define INIT_CNI_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "init/rules.h"

#define CNI_PLUGIN_TYPE		"dotproxy-cni"
#define CNI_ANNOTATION		"dotproxy/capture"
#define CNI_CAP_ANNOTATIONS	"io.kubernetes.cri.pod-annotations"
#define CNI_MAX_NAMESPACES	64
#define CNI_NAME_MAX		254	/* a Kubernetes namespace name is <= 63 */
#define CNI_MSG_MAX		512

/* Error codes of the CNI spec (0-99) and of this plugin (100 and up). */
enum cni_code {
	CNI_OK = 0,
	CNI_ERR_VERSION = 1,	/* incompatible CNI version */
	CNI_ERR_FIELD = 2,	/* unsupported field in the configuration */
	CNI_ERR_CONTAINER = 3,	/* container unknown or gone */
	CNI_ERR_ENV = 4,	/* invalid environment variables */
	CNI_ERR_IO = 5,		/* I/O failure */
	CNI_ERR_DECODE = 6,	/* failed to decode content */
	CNI_ERR_CONFIG = 7,	/* invalid network configuration */
	CNI_ERR_AGAIN = 11,	/* try again later */
	CNI_ERR_TABLE = 100,	/* CHECK: our table is missing or altered */
	CNI_ERR_NFT = 101,	/* the kernel refused the nftables change */
};

/* A failure: the code, one line, and optional details. */
struct cni_err {
	enum cni_code	code;
	char		msg[CNI_MSG_MAX];
	char		details[CNI_MSG_MAX];
};

enum cni_ipv6 { CNI_IPV6_AUTO = 0, CNI_IPV6_ON, CNI_IPV6_OFF };

/* One parsed network configuration. */
struct cni_conf {
	char		 version[16];	/* cniVersion */
	char		 name[CNI_NAME_MAX + 1];	/* the network's name */
	struct rules_spec spec;		/* ipv6 resolved later (auto) */
	enum cni_ipv6	 ipv6;
	char		 namespaces[CNI_MAX_NAMESPACES][CNI_NAME_MAX + 1];
	size_t		 nnamespaces;
	char		 log_file[4096];	/* "" = no log */
	json_t		*prev_result;	/* owned reference, or NULL */
	char		 annotation[16];	/* the pod's dotproxy/capture
						 * value, "" when absent */
	bool		 has_annotations;	/* the runtime passed them */
};

/* Why a pod is or is not captured. */
enum cni_pick {
	CNI_SKIP = 0,		/* neither annotated nor in a listed namespace */
	CNI_SKIP_OPTOUT,	/* annotated "false" (beats the namespace list) */
	CNI_PICK_ANNOTATION,	/* annotated "true" */
	CNI_PICK_NAMESPACE,	/* its namespace is listed */
};

/* The versions this plugin speaks, oldest first, and how many. */
extern const char *const cni_versions[];
extern const size_t cni_nversions;

/* True if v is one of cni_versions. */
bool	cni_version_supported(const char *v);

/*
 * True if version v knows CHECK (0.4.0 and later). v must be supported.
 */
bool	cni_version_has_check(const char *v);

/*
 * Parses the configuration text (len bytes, need not be NUL-terminated)
 * into c. Returns 0, or a cni_code with err filled: CNI_ERR_DECODE for
 * bad JSON, CNI_ERR_VERSION for an unknown cniVersion, CNI_ERR_CONFIG for
 * a bad value (err names the key). On success c->prev_result, when set,
 * must be released with cni_conf_fini; on failure nothing is held, and
 * c->version is the configuration's cniVersion when it is one we speak
 * ("" otherwise), for the error object.
 */
int	cni_conf_parse(const char *text, size_t len, struct cni_conf *c,
	    struct cni_err *err);
void	cni_conf_fini(struct cni_conf *c);

/*
 * ADD's result: the prevResult of the configuration text (which
 * cni_conf_parse accepted and found one in) with its cniVersion set to
 * version, every other byte as the previous plugin wrote it (numbers
 * beyond double precision, unknown fields). Returns a malloc'd string
 * (*outlen bytes), or NULL.
 */
char	*cni_prev_result_text(const char *text, size_t len,
	    const char *version, size_t *outlen);

/*
 * Looks key up in a CNI_ARGS string ("K1=V1;K2=V2"). Returns true and
 * copies the value (NUL-terminated) to out when present and it fits in
 * cap bytes; false otherwise (a missing args is no error).
 */
bool	cni_args_get(const char *args, const char *key, char *out,
	    size_t cap);

/*
 * The capture decision for a pod of Kubernetes namespace ns (may be NULL
 * or "" when the runtime did not say).
 */
enum cni_pick cni_select(const struct cni_conf *c, const char *ns);

/* True when the decision means: install the table. */
bool	cni_picked(enum cni_pick p);

/* A word for the log: "annotation", "namespace", "not selected", ... */
const char *cni_pick_name(enum cni_pick p);

/*
 * The spec's error object for err, as a new JSON object owned by the
 * caller, with cniVersion version (or the newest we speak when NULL or
 * "").
 */
json_t	*cni_err_json(const struct cni_err *err, const char *version);

/* Fills err; returns code, for `return cni_fail(...)`. */
__attribute__((format(printf, 3, 4))) int
	cni_fail(struct cni_err *err, enum cni_code code, const char *fmt, ...);

#endif
