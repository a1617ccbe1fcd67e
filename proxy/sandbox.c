/*
 * The seccomp allowlist (see sandbox.h). Top-level helper for main.
 *
 * Refused calls fail with EPERM rather than killing the process: a call
 * missed here on some rare path (a reload reading an odd CA store, a libc
 * fallback) then costs that one operation, which the proxy already
 * handles and logs as an error, instead of taking DNS away from the whole
 * pod; and sanitizer runtimes, which need calls of their own at exit, can
 * report instead of dying. SECCOMP_FILTER_FLAG_LOG (SCMP_FLTATR_CTL_LOG)
 * makes the kernel log every refusal, so a missed call shows up.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include <seccomp.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

/* Allowed whatever their arguments. */
static const int allow[] = {
	/* sockets and the loop */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(recvmmsg),
	SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg),
	SCMP_SYS(close), SCMP_SYS(shutdown), SCMP_SYS(connect),
	SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(fcntl),
	/* files, read-only (openat is checked below) */
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(stat),
	SCMP_SYS(lstat), SCMP_SYS(lseek), SCMP_SYS(getdents64),
	SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
	SCMP_SYS(readlink), SCMP_SYS(pread64),
	/* memory */
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(mprotect),
	/* time, randomness, identity, scheduling */
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getrandom),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
	SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(futex),
	SCMP_SYS(sched_yield), SCMP_SYS(uname), SCMP_SYS(sysinfo),
	SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(getrusage),
	/* signals and the end */
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
};

#ifdef SANDBOX_SANITIZER
/* What ASan, UBSan and LeakSanitizer do at run time and at exit (stop
 * the world: a tracer thread attaches to the others). */
static const int allow_sanitizer[] = {
	SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(ptrace), SCMP_SYS(wait4),
	SCMP_SYS(prctl), SCMP_SYS(sigaltstack), SCMP_SYS(tgkill),
	SCMP_SYS(kill), SCMP_SYS(getppid), SCMP_SYS(sched_getaffinity),
	SCMP_SYS(openat), SCMP_SYS(pipe2), SCMP_SYS(dup), SCMP_SYS(dup2),
	SCMP_SYS(munlock), SCMP_SYS(mlock), SCMP_SYS(set_robust_list),
	SCMP_SYS(rseq), SCMP_SYS(set_tid_address), SCMP_SYS(getcwd),
	SCMP_SYS(sched_getparam), SCMP_SYS(sched_getscheduler),
	SCMP_SYS(getdents),
};
#endif

int
sandbox_install(void)
{
	scmp_filter_ctx ctx;
	size_t i;
	int r;

	if ((ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))) == NULL)
		return -ENOMEM;
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0)
		goto out;
	/* Every thread: --workers starts them before the filter, since
	 * creating one needs clone, which the filter refuses. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
		goto out;
	/* Already set at start-up; the filter needs it when unprivileged. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) < 0)
		goto out;
	for (i = 0; i < sizeof(allow) / sizeof(allow[0]); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allow[i], 0)) < 0 &&
		    r != -EDOM)
			goto out;
#ifdef SANDBOX_SANITIZER
	for (i = 0; i < sizeof(allow_sanitizer) / sizeof(allow_sanitizer[0]); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allow_sanitizer[i],
		    0)) < 0 && r != -EDOM)
			goto out;
#endif
	/* New sockets: TCP and UDP over IPv4 and IPv6 only (upstream and
	 * plain DNS); no netlink, raw, packet or Unix sockets. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_INET))) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_INET6))) < 0)
		goto out;
#ifndef SANDBOX_SANITIZER
	/* Files: read-only opens (a reload reads the CA and config files,
	 * metrics reads /proc/self); never a write, a create or a truncate. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC |
	    O_APPEND, O_RDONLY))) < 0)
		goto out;
#endif
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(open), 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC |
	    O_APPEND, O_RDONLY))) < 0 && r != -EDOM)
		goto out;
	/* stdio asks whether a stream is a terminal. */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_EQ, TCGETS))) < 0)
		goto out;
	r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r < 0 ? r : 0;
}
