/*
 * The node installer of dotproxy-cni (`dotproxy-cni install`, run by a
 * DaemonSet): copies the plugin into the CNI bin directory, appends it to
 * the end of the network configuration list the runtime uses, keeps it
 * there when the network plugin rewrites the file, and leaves both in
 * place when it stops (`dotproxy-cni uninstall` removes them). The edits
 * are pure functions, unit-tested without files.
 */
#ifndef INIT_CNI_INSTALL_H
#define INIT_CNI_INSTALL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define CNI_INSTALL_BIN		"dotproxy-cni"	/* the plugin's file name */
#define CNI_INSTALL_TMP		".dotproxy-cni.tmp"	/* temp file prefix:
							 * libcni skips it */

/* Runs the installer; argv[0] is "install" or "uninstall". Returns the
 * exit status. */
int	cni_install_main(int argc, char **argv);

/*
 * `dotproxy-cni ready [FILE]`, the DaemonSet's readinessProbe (the image
 * has no shell): exit 0 when FILE (default $DOTPROXY_CNI_READY_FILE, the
 * installer's --ready-file) exists, 1 when not, 2 on bad usage.
 */
int	cni_ready_main(int argc, char **argv);

/* True when libcni would consider a file of this name: its extension
 * (filepath.Ext) is .conf, .conflist or .json; dot-files included. */
bool	cni_install_candidate(const char *name);

/*
 * Which file a runtime uses: libcni's ConfFiles, sorted as its callers
 * sort (byte order), first: the least name that is a candidate and not a
 * directory (is_dir[i], from lstat: a link to a directory counts as no
 * directory, as in Go's os.ReadDir). Returns its index, or -1.
 */
ssize_t	cni_install_first(const char *const *names, const bool *is_dir,
	    size_t n);

/*
 * Our plugin entry: "type": "dotproxy-cni", the pod-annotations
 * capability, then the keys of config (an object, may be NULL). Returns a
 * new object owned by the caller, or NULL when config is no object or
 * names a different type.
 */
json_t	*cni_install_entry(json_t *config);

/*
 * The same entry as JSON text built from config's text (valid JSON, an
 * object): config's members copied as written, so its numbers keep their
 * tokens. Returns a malloc'd string, or NULL.
 */
char	*cni_install_entry_text(const char *config, size_t len);

/*
 * Edits the configuration list text (len bytes). With entry_text (from
 * cni_install_entry_text): every dotproxy-cni entry out, entry_text
 * appended as the last plugin; nothing to do when the last plugin
 * already equals it and is our only one. With entry_text NULL: every
 * dotproxy-cni entry out. Everything else stays byte for byte, numbers
 * beyond int64 included; removing what was appended gives back the very
 * bytes. Returns 1 with *out (malloc'd, *outlen bytes), 0 when nothing
 * changes (*out NULL), or -EINVAL/-ENOMEM with why filled (not JSON, no
 * "plugins" array, ...).
 */
int	cni_install_edit(const char *text, size_t len, const char *entry_text,
	    char **out, size_t *outlen, char *why, size_t whycap);

#endif
