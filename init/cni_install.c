/*
 * The node installer of dotproxy-cni (see cni_install.h). Owns the files
 * it writes on the node: the plugin binary in the CNI bin directory, its
 * entry in the network configuration list the runtime uses, and the ready
 * file. Every write is a temp file (a name libcni skips) renamed over the
 * target; a configuration list that is a symbolic link is written through
 * to the link's target, the link stays. The list is edited as text (see
 * cni_json.h): only our entry goes in or out, every other byte stays. It
 * watches the configuration directory with inotify and re-adds its entry
 * whenever the network plugin rewrites the file. SIGTERM and SIGINT end
 * it and leave binary and entry in place, as a rolling update needs: pods
 * started with the entry must still tear down. Only `dotproxy-cni
 * uninstall` takes them away. Single-threaded; blocks only in poll.
 */
#include "init/cni_install.h"

#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "init/cni_conf.h"
#include "init/cni_json.h"

#define INST_MAX_FILES	1024	/* configuration files considered */
#define INST_FILE_MAX	(1u << 20)	/* bytes of one configuration file */
#define INST_BIN_MAX	(64u << 20)	/* bytes of the plugin binary */
#define INST_MAX_PLUGINS 64	/* plugins of one list */
#define INST_ENV_PREFIX	"DOTPROXY_CNI_"

struct inst {
	const char	*bin_dir;	/* borrowed: argv/environment */
	const char	*conf_dir;	/* borrowed */
	const char	*conf_file;	/* borrowed: the list to edit, or NULL
					 * for libcni's first */
	const char	*source;	/* borrowed: the binary to copy */
	const char	*ready_file;	/* borrowed: "" = none */
	json_t		*entry;		/* owned: our plugin entry */
	char		*entry_text;	/* owned: the same as JSON text */
	bool		 once;		/* install, then exit */
	bool		 keep_binary;	/* uninstall: the entry only */
	char		 path[PATH_MAX];	/* the list we edited, "" = none */
	char		 last[512];	/* the last complaint, said once */
};

__attribute__((format(printf, 1, 2))) static void
say(const char *fmt, ...)
{
	va_list ap;

	fputs("dotproxy-cni install: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Says a complaint about the configuration once, not at every look. */
__attribute__((format(printf, 2, 3))) static void
complain(struct inst *in, const char *fmt, ...)
{
	char msg[sizeof(in->last)];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, in->last) == 0)
		return;
	memcpy(in->last, msg, sizeof(msg));
	say("%s", msg);
}

/* filepath.Ext(name) == suf, as libcni compares: ".conf" itself counts. */
static bool
has_ext(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && strcmp(s + n - m, suf) == 0;
}

bool
cni_install_candidate(const char *name)
{
	return has_ext(name, ".conf") || has_ext(name, ".conflist") ||
	    has_ext(name, ".json");
}

ssize_t
cni_install_first(const char *const *names, const bool *is_dir, size_t n)
{
	ssize_t best = -1;
	size_t i;

	for (i = 0; i < n; i++) {
		if (is_dir[i] || !cni_install_candidate(names[i]))
			continue;
		if (best < 0 || strcmp(names[i], names[best]) < 0)
			best = (ssize_t)i;
	}
	return best;
}

static bool
is_ours(const json_t *plugin)
{
	const char *t = json_string_value(json_object_get(plugin, "type"));

	return t != NULL && strcmp(t, CNI_PLUGIN_TYPE) == 0;
}

json_t *
cni_install_entry(json_t *config)
{
	const char *key;
	json_t *e, *v;

	if (config != NULL && !json_is_object(config))
		return NULL;
	if (config != NULL && json_object_get(config, "type") != NULL &&
	    !is_ours(config))
		return NULL;
	/* dns: the pod's nameservers, which the UDP marks name. */
	e = json_pack("{s:s, s:{s:b, s:b}}", "type", CNI_PLUGIN_TYPE,
	    "capabilities", CNI_CAP_ANNOTATIONS, 1, "dns", 1);
	if (e == NULL || config == NULL)
		return e;
	json_object_foreach(config, key, v)
		if (strcmp(key, "type") != 0 && strcmp(key, "capabilities") != 0)
			json_object_set(e, key, v);
	return e;
}

char *
cni_install_entry_text(const char *config, size_t len)
{
	struct cjs_span keys[CJS_MEMBERS_MAX], vals[CJS_MEMBERS_MAX], root;
	static const char lead[] = "{\"type\": \"" CNI_PLUGIN_TYPE "\", "
	    "\"capabilities\": {\"" CNI_CAP_ANNOTATIONS "\": true, \"dns\": true}";
	size_t n, i, cap, used;
	char *out;

	if (!cjs_root(config, len, &root) ||
	    !cjs_members(config, &root, keys, vals, CJS_MEMBERS_MAX, &n))
		return NULL;
	cap = sizeof(lead) + 2 * n + root.len + 2;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	memcpy(out, lead, sizeof(lead) - 1);
	used = sizeof(lead) - 1;
	/* The caller's members as it wrote them: numbers stay its tokens. */
	for (i = 0; i < n; i++) {
		if (cjs_key_is(config, &keys[i], "type") ||
		    cjs_key_is(config, &keys[i], "capabilities"))
			continue;
		memcpy(out + used, ", ", 2);
		used += 2;
		memcpy(out + used, config + keys[i].off, vals[i].off +
		    vals[i].len - keys[i].off);
		used += vals[i].off + vals[i].len - keys[i].off;
	}
	out[used++] = '}';
	out[used] = '\0';
	return out;
}

int
cni_install_edit(const char *text, size_t len, const char *entry_text,
    char **out, size_t *outlen, char *why, size_t whycap)
{
	struct cjs_span root, arr, el[INST_MAX_PLUGINS];
	json_t *conf, *plugins, *entry = NULL;
	json_error_t jerr;
	size_t n, i, nours = 0, cap, used, lws, first = 0;
	bool kept_any = false, ours[INST_MAX_PLUGINS];
	const char *sep;
	char *o;
	int rc = 0;

	*out = NULL;
	*outlen = 0;
	/*
	 * Integers as reals: jansson refuses integers beyond int64, which a
	 * list may hold (Go reads every number as a double). Only the types
	 * and our entry are looked at; the text itself is what is kept. Our
	 * entry is read the same way, so that the two compare.
	 */
	if (entry_text != NULL && (entry = json_loads(entry_text,
	    JSON_DECODE_INT_AS_REAL, NULL)) == NULL) {
		snprintf(why, whycap, "our entry is not JSON");
		return -EINVAL;
	}
	if ((conf = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &jerr)) ==
	    NULL) {
		snprintf(why, whycap, "not valid JSON (%s, line %d)",
		    jerr.text, jerr.line);
		json_decref(entry);
		return -EINVAL;
	}
	plugins = json_object_get(conf, "plugins");
	if (!json_is_object(conf) || !json_is_array(plugins)) {
		snprintf(why, whycap, "no \"plugins\" array: a single-plugin "
		    "configuration, not a list (convert it to a .conflist)");
		rc = -EINVAL;
		goto out;
	}
	if ((n = json_array_size(plugins)) > INST_MAX_PLUGINS ||
	    !cjs_root(text, len, &root) ||
	    !cjs_member(text, &root, "plugins", &arr, NULL) ||
	    !cjs_elements(text, &arr, el, INST_MAX_PLUGINS, &i) || i != n) {
		snprintf(why, whycap, "cannot edit its \"plugins\" (more than "
		    "%d, or repeated keys)", INST_MAX_PLUGINS);
		rc = -EINVAL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		ours[i] = is_ours(json_array_get(plugins, i));
		nours += ours[i];
	}
	/* In place already: ours, last, alone, equal. Nothing to write. */
	if (entry != NULL ? nours == 1 && ours[n - 1] &&
	    json_equal(json_array_get(plugins, n - 1), entry) : nours == 0)
		goto out;
	/*
	 * The array again from its pieces: what precedes each kept element
	 * in the text (the '[' or its comma, and the blanks), the element,
	 * the blanks before ']'. Our entry goes last, after the indentation
	 * of the first element, so that taking it out again gives back the
	 * very bytes it went into.
	 */
	lws = arr.off + 1;	/* the blanks before the first element */
	cap = len + (entry_text != NULL ? strlen(entry_text) : 0) +
	    (n > 0 ? el[0].off - lws : 0) + 2;
	if ((o = malloc(cap)) == NULL) {
		snprintf(why, whycap, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	used = arr.off + 1;
	memcpy(o, text, used);
	for (i = 0; i < n; i++) {
		if (ours[i])
			continue;
		if (!kept_any)	/* the blanks after '[' */
			first = arr.off + 1;
		else		/* the comma and blanks before it */
			first = el[i - 1].off + el[i - 1].len;
		if (!kept_any && i > 0) {
			memcpy(o + used, text + lws, el[0].off - lws);
			used += el[0].off - lws;
		} else {
			memcpy(o + used, text + first, el[i].off - first);
			used += el[i].off - first;
		}
		memcpy(o + used, text + el[i].off, el[i].len);
		used += el[i].len;
		kept_any = true;
	}
	if (entry_text != NULL) {
		if (kept_any)
			o[used++] = ',';
		sep = n > 0 ? text + lws : "";
		memcpy(o + used, sep, n > 0 ? el[0].off - lws : 0);
		used += n > 0 ? el[0].off - lws : 0;
		memcpy(o + used, entry_text, strlen(entry_text));
		used += strlen(entry_text);
	}
	/* From the last element (or '[') on: the blanks, ']' and the rest. */
	first = n > 0 ? el[n - 1].off + el[n - 1].len : arr.off + 1;
	memcpy(o + used, text + first, len - first);
	used += len - first;
	o[used] = '\0';
	*out = o;
	*outlen = used;
	rc = 1;
out:
	json_decref(entry);
	json_decref(conf);
	return rc;
}

/* ---- files ---- */

static int
read_file(const char *path, size_t max, char **out, size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	char *buf, *nb;
	ssize_t r;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	if ((buf = malloc(cap)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				e = EFBIG;
				goto fail;
			}
			cap *= 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				e = ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			e = errno;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	close(fd);
	return -e;
}

/*
 * Writes len bytes to dir/name through a temp file in dir renamed over
 * it, with mode. Returns 0 or -errno.
 */
static int
write_atomic(const char *dir, const char *name, const void *data,
    size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	const char *p = data;
	ssize_t w;
	int fd, e = 0;

	if (snprintf(tmp, sizeof(tmp), "%s/%s.%ld", dir, CNI_INSTALL_TMP,
	    (long)getpid()) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    mode)) == -1)
		return -errno;
	while (len > 0) {
		w = write(fd, p, len);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1) {
			e = errno;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (e == 0 && fchmod(fd, mode) == -1)
		e = errno;
	if (e == 0 && fsync(fd) == -1)
		e = errno;
	if (close(fd) == -1 && e == 0)
		e = errno;
	if (e == 0 && rename(tmp, dst) == -1)
		e = errno;
	if (e != 0)
		(void)unlink(tmp);
	return -e;
}

/* Copies the plugin binary into the bin directory (atomically). */
static int
copy_binary(const struct inst *in)
{
	char *data;
	size_t len;
	int rc;

	if ((rc = read_file(in->source, INST_BIN_MAX, &data, &len)) != 0 &&
	    rc != -EFBIG) {
		say("cannot read %s: %s", in->source, strerror(-rc));
		return rc;
	}
	if (rc == -EFBIG) {
		say("%s is larger than %u bytes", in->source, INST_BIN_MAX);
		return rc;
	}
	rc = write_atomic(in->bin_dir, CNI_INSTALL_BIN, data, len, 0755);
	free(data);
	if (rc != 0)
		say("cannot write %s/%s: %s", in->bin_dir, CNI_INSTALL_BIN,
		    strerror(-rc));
	return rc;
}

/*
 * The list to edit: --conf-file when given, else the first file of the
 * directory as libcni's ConfFiles and its callers sort them (os.ReadDir:
 * by name, byte order; directories skipped, dot-files and symbolic links
 * considered). path gets "" when there is none.
 */
static int
pick_conf(const struct inst *in, char *path, size_t cap)
{
	const char *names[INST_MAX_FILES];
	bool is_dir[INST_MAX_FILES];
	char *copies[INST_MAX_FILES];
	struct dirent *de;
	struct stat st;
	size_t n = 0, i;
	ssize_t k;
	DIR *d;
	int rc = 0;

	path[0] = '\0';
	if (in->conf_file != NULL) {
		if (snprintf(path, cap, "%s%s%s", strchr(in->conf_file, '/') ?
		    "" : in->conf_dir, strchr(in->conf_file, '/') ? "" : "/",
		    in->conf_file) >= (int)cap)
			return -ENAMETOOLONG;
		return 0;
	}
	if ((d = opendir(in->conf_dir)) == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == INST_MAX_FILES) {
			rc = -E2BIG;
			break;
		}
		/* A link to a directory is no directory to libcni (lstat). */
		if (de->d_type == DT_UNKNOWN)
			is_dir[n] = fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		else
			is_dir[n] = de->d_type == DT_DIR;
		if ((copies[n] = strdup(de->d_name)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		names[n] = copies[n];
		n++;
	}
	closedir(d);
	if (rc == 0 && (k = cni_install_first(names, is_dir, n)) >= 0 &&
	    snprintf(path, cap, "%s/%s", in->conf_dir, names[k]) >= (int)cap)
		rc = -ENAMETOOLONG;
	for (i = 0; i < n; i++)
		free(copies[i]);
	return rc;
}

/*
 * Writes data over the list at path; through a symbolic link, to the
 * link's target (its directory holds the temp file), so the link stays.
 */
static int
write_conf(const char *path, const char *data, size_t len)
{
	char real[PATH_MAX], dir[PATH_MAX], base[PATH_MAX];
	struct stat st;

	if (realpath(path, real) == NULL)
		return -errno;
	if (stat(real, &st) == -1)
		st.st_mode = 0644;
	memcpy(dir, real, sizeof(real));
	memcpy(base, real, sizeof(real));
	return write_atomic(dirname(dir), basename(base), data, len,
	    st.st_mode & 07777);
}

static void
ready(const struct inst *in, bool yes)
{
	int fd;

	if (in->ready_file[0] == '\0')
		return;
	if (!yes) {
		(void)unlink(in->ready_file);
		return;
	}
	if ((fd = open(in->ready_file, O_WRONLY | O_CREAT | O_CLOEXEC,
	    0644)) == -1)
		say("cannot create the ready file %s: %s", in->ready_file,
		    strerror(errno));
	else
		close(fd);
}

/*
 * Takes our entry out of the list at path, every other byte kept. Returns
 * 0 (also when there was none, or no file) or -errno.
 */
static int
release_file(const char *path)
{
	char *data = NULL, *out = NULL, why[256];
	size_t len, olen;
	int rc;

	/* Gone, or a directory with a list's name: nothing of ours. */
	if ((rc = read_file(path, INST_FILE_MAX, &data, &len)) != 0)
		return rc == -ENOENT || rc == -EISDIR ? 0 : rc;
	rc = cni_install_edit(data, len, NULL, &out, &olen, why, sizeof(why));
	if (rc < 0) {
		/* Not a list of ours to edit: nothing of ours in it. */
		rc = 0;
	} else if (rc > 0 && (rc = write_conf(path, out, olen)) != 0)
		say("cannot write %s: %s", path, strerror(-rc));
	else if (out != NULL)
		say("removed %s from %s", CNI_PLUGIN_TYPE, path);
	free(out);
	free(data);
	return rc;
}

/*
 * Makes sure the list the runtime uses ends with our entry. Returns 0
 * when it does, 1 when there is no list (yet), or -errno; says why.
 */
static int
ensure(struct inst *in)
{
	char path[PATH_MAX], why[256], *data = NULL, *out = NULL;
	struct stat st;
	size_t len, olen;
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", in->bin_dir,
	    CNI_INSTALL_BIN) < (int)sizeof(path) && stat(path, &st) == -1 &&
	    (rc = copy_binary(in)) != 0)
		return rc;
	if ((rc = pick_conf(in, path, sizeof(path))) != 0) {
		complain(in, "cannot list %s: %s", in->conf_dir, strerror(-rc));
		return rc;
	}
	if (path[0] == '\0') {
		complain(in, "no network configuration list in %s (yet)",
		    in->conf_dir);
		return 1;
	}
	/* Another file comes first now: the runtime no longer reads the old
	 * one, so it gets its own content back. */
	if (in->path[0] != '\0' && strcmp(in->path, path) != 0) {
		(void)release_file(in->path);
		in->path[0] = '\0';
	}
	if ((rc = read_file(path, INST_FILE_MAX, &data, &len)) != 0) {
		if (rc == -ENOENT) {	/* renamed away meanwhile, or a dangling
					 * link: the next event */
			complain(in, "%s is not there (yet)", path);
			return 1;
		}
		complain(in, "cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = cni_install_edit(data, len, in->entry_text, &out, &olen, why,
	    sizeof(why));
	if (rc < 0) {
		/* Half written by someone without a rename, or not a list:
		 * wait for the next version of the file. */
		complain(in, "%s: %s", path, why);
		goto out;
	}
	if (rc > 0 && (rc = write_conf(path, out, olen)) != 0) {
		complain(in, "cannot write %s: %s", path, strerror(-rc));
		goto out;
	}
	if (out != NULL)
		say("added %s to the end of %s", CNI_PLUGIN_TYPE, path);
	in->last[0] = '\0';
	memcpy(in->path, path, strlen(path) + 1);
out:
	free(out);
	free(data);
	return rc;
}

/*
 * `dotproxy-cni uninstall`: our entry out of every list in the directory
 * (and --conf-file), then the binary. Returns 0 or -errno.
 */
static int
uninstall(struct inst *in)
{
	struct dirent *de;
	char path[PATH_MAX];
	int rc = 0, r, e;
	DIR *d;

	if (in->conf_file != NULL && pick_conf(in, path, sizeof(path)) == 0 &&
	    (r = release_file(path)) != 0)
		rc = r;
	if ((d = opendir(in->conf_dir)) == NULL) {
		e = errno;
		say("cannot list %s: %s", in->conf_dir, strerror(e));
		rc = -e;
	} else {
		while ((de = readdir(d)) != NULL)
			if (de->d_type != DT_DIR &&
			    cni_install_candidate(de->d_name) &&
			    snprintf(path, sizeof(path), "%s/%s", in->conf_dir,
			    de->d_name) < (int)sizeof(path) &&
			    (r = release_file(path)) != 0)
				rc = r;
		closedir(d);
	}
	ready(in, false);
	if (in->keep_binary)
		return rc;
	if (snprintf(path, sizeof(path), "%s/%s", in->bin_dir,
	    CNI_INSTALL_BIN) < (int)sizeof(path) && unlink(path) == -1 &&
	    errno != ENOENT) {
		e = errno;
		say("cannot remove %s: %s", path, strerror(e));
		rc = -e;
	}
	return rc;
}

/*
 * Watches the configuration directory until SIGTERM or SIGINT, then
 * leaves everything in place: a rolling update stops the old installer
 * while pods started with its entry still need the plugin for DEL.
 */
static int
watch(struct inst *in)
{
	char evbuf[16 * 1024];
	struct signalfd_siginfo si;
	struct pollfd pfd[2];
	sigset_t set;
	int ifd, sfd, rc = 0, e;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1 ||
	    (sfd = signalfd(-1, &set, SFD_CLOEXEC)) == -1) {
		e = errno;
		say("signalfd: %s", strerror(e));
		return -e;
	}
	if ((ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) == -1 ||
	    inotify_add_watch(ifd, in->conf_dir, IN_CLOSE_WRITE | IN_MOVED_TO |
	    IN_MOVED_FROM | IN_CREATE | IN_DELETE) == -1) {
		e = errno;
		say("cannot watch %s: %s", in->conf_dir, strerror(e));
		close(sfd);
		return -e;
	}
	say("watching %s", in->conf_dir);
	pfd[0].fd = sfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = ifd;
	pfd[1].events = POLLIN;
	/* After the watch exists: nothing written before it is missed. */
	ready(in, ensure(in) == 0);
	for (;;) {
		/* The timeout also brings back a binary someone deleted, and
		 * sees a link's target rewritten in a directory not watched. */
		if (poll(pfd, 2, 5000) == -1 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (pfd[0].revents & POLLIN) {
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				say("signal %u: stopping; the plugin and its "
				    "entry stay (dotproxy-cni uninstall removes "
				    "them)", si.ssi_signo);
			break;
		}
		/* Drain the events; one look at the directory serves them all. */
		while (read(ifd, evbuf, sizeof(evbuf)) > 0)
			;
		ready(in, ensure(in) == 0);
	}
	close(ifd);
	close(sfd);
	return rc;
}

static const char install_usage[] =
"usage: dotproxy-cni install [options]\n"
"       dotproxy-cni uninstall [options]\n"
"install copies the plugin into the CNI bin directory, appends it to the\n"
"end of the network configuration list the runtime uses (libcni's first\n"
"file by name, or --conf-file), keeps it there when that file is\n"
"rewritten, and creates the ready file while it is there. SIGTERM or\n"
"SIGINT stop it and leave plugin and entry in place (a rolling update).\n"
"uninstall takes the entry out of every list in the directory and the\n"
"plugin away. Only the entry changes: every other byte stays.\n"
"\n"
"  --cni-bin-dir DIR     where the runtime finds plugins\n"
"                        (default /host/opt/cni/bin)\n"
"  --cni-conf-dir DIR    the runtime's configuration directory\n"
"                        (default /host/etc/cni/net.d)\n"
"  --conf-file NAME      the list to edit (a name in that directory, or a\n"
"                        path) instead of the runtime's first\n"
"  --plugin-config JSON  the plugin's keys, e.g. {\"proxyPort\":15353,\n"
"                        \"namespaces\":[\"apps\"]} (default {})\n"
"  --source PATH         the binary to copy (default: this one)\n"
"  --ready-file PATH     created once the entry is in place, removed while\n"
"                        it is not (for a readinessProbe)\n"
"  --once                install, then exit instead of watching; exit\n"
"                        status 1 when nothing was installed\n"
"  --keep-binary         uninstall: leave the plugin binary\n"
"  --uninstall           the same as `dotproxy-cni uninstall`\n"
"\n"
"Every option also reads DOTPROXY_CNI_<NAME> (upper case, '-' -> '_').\n"
"Exit status: 0 ok; 1 failure; 2 bad usage.\n";

/* A flag's value, else its DOTPROXY_CNI_ twin, else dflt. */
static const char *
opt_or_env(const char *flag_val, const char *env, const char *dflt)
{
	const char *v;

	if (flag_val != NULL)
		return flag_val;
	if ((v = getenv(env)) != NULL && v[0] != '\0')
		return v;
	return dflt;
}

static bool
env_switch(const char *env)
{
	const char *v = getenv(env);

	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

/* The entry must be a configuration the plugin accepts: say so now,
 * not at every pod start. */
static bool
entry_valid(const char *entry_text)
{
	struct cni_conf conf;
	struct cni_err err;
	size_t n = strlen(entry_text);
	char *text;
	int rc;

	/* {"cniVersion": "1.0.0", + the entry's members */
	if ((text = malloc(n + 32)) == NULL)
		return false;
	snprintf(text, n + 32, "{\"cniVersion\": \"1.0.0\", %s", entry_text + 1);
	rc = cni_conf_parse(text, strlen(text), &conf, &err);
	free(text);
	if (rc != 0) {
		say("--plugin-config: %s", err.msg);
		return false;
	}
	cni_conf_fini(&conf);
	return true;
}

/* Copies the binary and places the entry once. Nothing is left half
 * done: a binary this run brought is taken back when the entry could not
 * be placed. */
static int
install_once(struct inst *in)
{
	char path[PATH_MAX];
	struct stat st;
	bool had;
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", in->bin_dir,
	    CNI_INSTALL_BIN) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	had = stat(path, &st) == 0;
	if ((rc = copy_binary(in)) != 0)
		return rc;
	if ((rc = ensure(in)) == 0) {
		ready(in, true);
		return 0;
	}
	say("nothing installed");
	if (!had)
		(void)unlink(path);
	return rc;
}

int
cni_install_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cni-bin-dir", required_argument, NULL, 'b' },
		{ "cni-conf-dir", required_argument, NULL, 'c' },
		{ "conf-file", required_argument, NULL, 'f' },
		{ "plugin-config", required_argument, NULL, 'p' },
		{ "source", required_argument, NULL, 's' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "once", no_argument, NULL, 'o' },
		{ "keep-binary", no_argument, NULL, 'k' },
		{ "uninstall", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *fb = NULL, *fc = NULL, *ff = NULL, *fp = NULL, *fs = NULL;
	const char *fr = NULL, *pc;
	bool remove = strcmp(argv[0], "uninstall") == 0;
	struct inst in;
	json_error_t jerr;
	json_t *cfg;
	int c, rc;

	memset(&in, 0, sizeof(in));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': fb = optarg; break;
		case 'c': fc = optarg; break;
		case 'f': ff = optarg; break;
		case 'p': fp = optarg; break;
		case 's': fs = optarg; break;
		case 'r': fr = optarg; break;
		case 'o': in.once = true; break;
		case 'k': in.keep_binary = true; break;
		case 'u': remove = true; break;
		case 'h':
			fputs(install_usage, stdout);
			return 0;
		default:
			say("unknown option or missing value '%s' (see --help)",
			    argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		say("unexpected argument '%s' (see --help)", argv[optind]);
		return 2;
	}
	in.bin_dir = opt_or_env(fb, INST_ENV_PREFIX "CNI_BIN_DIR",
	    "/host/opt/cni/bin");
	in.conf_dir = opt_or_env(fc, INST_ENV_PREFIX "CNI_CONF_DIR",
	    "/host/etc/cni/net.d");
	in.conf_file = opt_or_env(ff, INST_ENV_PREFIX "CONF_FILE", NULL);
	in.source = opt_or_env(fs, INST_ENV_PREFIX "SOURCE", "/proc/self/exe");
	in.ready_file = opt_or_env(fr, INST_ENV_PREFIX "READY_FILE", "");
	pc = opt_or_env(fp, INST_ENV_PREFIX "PLUGIN_CONFIG", "{}");
	in.once = in.once || env_switch(INST_ENV_PREFIX "ONCE");
	in.keep_binary = in.keep_binary ||
	    env_switch(INST_ENV_PREFIX "KEEP_BINARY");
	remove = remove || env_switch(INST_ENV_PREFIX "UNINSTALL");
	if (in.conf_file != NULL && (in.conf_file[0] == '\0' ||
	    (strchr(in.conf_file, '/') == NULL &&
	    !cni_install_candidate(in.conf_file)))) {
		say("--conf-file '%s': want a .conflist, .conf or .json name "
		    "in the configuration directory, or a path", in.conf_file);
		return 2;
	}
	if ((cfg = json_loads(pc, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		say("--plugin-config: not JSON: %s", jerr.text);
		return 2;
	}
	in.entry = cni_install_entry(cfg);
	json_decref(cfg);
	if (in.entry == NULL || (in.entry_text = cni_install_entry_text(pc,
	    strlen(pc))) == NULL) {
		say("--plugin-config: want a JSON object of the plugin's keys");
		json_decref(in.entry);
		return 2;
	}
	if (!entry_valid(in.entry_text)) {
		json_decref(in.entry);
		free(in.entry_text);
		return 2;
	}
	if (remove)
		rc = uninstall(&in);
	else if (in.once)
		rc = install_once(&in);
	else {
		ready(&in, false);	/* a stale one from a crashed run */
		if ((rc = copy_binary(&in)) == 0)
			rc = watch(&in);
		ready(&in, false);
	}
	json_decref(in.entry);
	free(in.entry_text);
	return rc == 0 ? 0 : 1;
}

int
cni_ready_main(int argc, char **argv)
{
	const char *path = argc >= 2 ? argv[1] : getenv(INST_ENV_PREFIX
	    "READY_FILE");
	struct stat st;

	if (argc > 2 || path == NULL || path[0] == '\0') {
		fprintf(stderr, "usage: dotproxy-cni ready [FILE] (default "
		    "$%sREADY_FILE)\n", INST_ENV_PREFIX);
		return 2;
	}
	if (stat(path, &st) == -1) {
		fprintf(stderr, "dotproxy-cni: not ready: %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	return 0;
}
