/*
 * The system call allowlist (seccomp, through libseccomp), installed after
 * start-up: once the listeners, the netlink sockets and the metrics
 * listener exist, the proxy only needs to read and write sockets, make
 * outgoing TCP and UDP sockets (IPv4 and IPv6), read files (the CA bundle
 * and the --config file at a reload, /proc/self for metrics), manage
 * memory, read the clock and randomness, and exit. Anything else (exec,
 * new listeners, writing or creating files, ptrace, new privileges,
 * namespaces, mounts, kernel modules, raw or packet sockets...) fails
 * with EPERM, and the kernel logs each refusal (audit, dmesg).
 */
#ifndef PROXY_SANDBOX_H
#define PROXY_SANDBOX_H

/* Installs the filter. 0, or -errno / -ENOSYS (built without it). */
int	sandbox_install(void);

#endif
