/*
 * pause: the process that holds a pod's namespaces in tests/e2e/cri.bats,
 * built static so that its image is this one file. It waits for a signal;
 * SIGTERM and SIGINT end it (with status 0), as the runtime's stop asks.
 * It also reaps children, as a pod's PID 1 must when it is one.
 */

#include <sys/wait.h>

#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t done;

static void
on_stop(int sig)
{
	(void)sig;
	done = 1;
}

static void
on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int
main(void)
{
	struct sigaction sa = { 0 };

	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_child;
	sigaction(SIGCHLD, &sa, NULL);
	while (!done)
		pause();
	return 0;
}
