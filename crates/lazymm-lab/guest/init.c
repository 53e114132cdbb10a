/*
 * lazymm lab guest: the whole userspace of the guest, run as /init from the initramfs
 * that `lazymm lab` builds. It mounts proc, sysfs, devtmpfs and tracefs, enables the
 * trace events named on the kernel command line, runs one workload for the time given
 * there, writes the trace text to the virtio serial port (the host's trace file) and
 * powers the guest off. Everything it says goes to the console (the host's console log),
 * prefixed "lab:".
 *
 * Kernel command-line parameters (all read from /proc/cmdline):
 *   lab.workload=NAME   threads | processes | idle-storm | exit-storm | migrate-storm |
 *                       munmap-storm | hotplug
 *   lab.seconds=N       how long the workload runs (guest seconds)
 *   lab.phases=P:B,...  one phase per item, run one after the other in this boot: P pairs
 *                       (threads/processes) or workers (the others; 0 = one per CPU), B 1
 *                       for will-it-scale's pinned mode (pair i, both ends, on CPU i % ncpus)
 *   lab.events=a:b,c:d  trace events to enable (system:event, or system:* )
 *   lab.bufkb=N         per-CPU trace buffer, KiB
 *
 * Built static (-static -O2) by `lazymm lab` with the host's gcc, or Debian's
 * powerpc64le-linux-gnu-gcc for a powerpc guest.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRACEFS "/sys/kernel/tracing"

static char workload[64] = "exit-storm";
static char events[4096] = "";
static char phases[1024] = "0:0";
static int seconds = 5, pairs = 0, pin = 0, bufkb = 8192, ncpus = 1;
static volatile int stop_flag;
static double t_end;

static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	/* One write per line: lines from several tasks must not interleave. */
	char line[1100];
	memcpy(line, "lab: ", 5);
	memcpy(line + 5, buf, n);
	(void)!write(1, line, n + 5);
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void die(const char *what)
{
	say("FAILED: %s: %s", what, strerror(errno));
	power_off();
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int append_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static void read_cmdline(void)
{
	static char buf[8192];
	int fd = open("/proc/cmdline", O_RDONLY);
	if (fd < 0)
		die("open /proc/cmdline");
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		die("read /proc/cmdline");
	buf[n] = 0;
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
		if (!strncmp(tok, "lab.workload=", 13))
			snprintf(workload, sizeof workload, "%s", tok + 13);
		else if (!strncmp(tok, "lab.seconds=", 12))
			seconds = atoi(tok + 12);
		else if (!strncmp(tok, "lab.phases=", 11))
			snprintf(phases, sizeof phases, "%s", tok + 11);
		else if (!strncmp(tok, "lab.bufkb=", 10))
			bufkb = atoi(tok + 10);
		else if (!strncmp(tok, "lab.events=", 11))
			snprintf(events, sizeof events, "%s", tok + 11);
	}
}

static void pin_to(pid_t pid, int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu % ncpus, &set);
	sched_setaffinity(pid, sizeof set, &set);
}

/* ---- workloads ------------------------------------------------------------------- */

/* Touches a few pages so that the mm has page tables to free at exit. */
static void touch_pages(int pages)
{
	char *p = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	for (int i = 0; i < pages; i++)
		p[i * 4096] = 1;
}

static char self_path[] = "/init";

/* exit-storm: each spawner forks a child that touches memory, moves to the next CPU,
 * every fourth one execs, and exits; the spawner waits for it. */
static void exit_storm_spawner(int id)
{
	unsigned long n = 0;
	if (pin)
		pin_to(0, id);
	while (now() < t_end) {
		pid_t c = fork();
		if (c == 0) {
			touch_pages(16);
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET((sched_getcpu() + 1) % ncpus, &set);
			if (ncpus > 1)
				sched_setaffinity(0, sizeof set, &set);
			touch_pages(4);
			if (n % 4 == 3) {
				char *argv[] = { self_path, "lab-exit-child", NULL };
				execv(self_path, argv);
			}
			_exit(0);
		}
		if (c > 0)
			waitpid(c, NULL, 0);
		n++;
	}
	_exit(0);
}

/* One end of a pipe ping-pong: reads a byte from rfd, writes it to wfd. */
struct end {
	int rfd, wfd, first, cpu;
};

static void *pingpong(void *arg)
{
	struct end *e = arg;
	char b = 0;
	say("pair %d end %d tid %d", e->cpu, e->first, (int)gettid());
	if (pin)
		pin_to(0, e->cpu);
	if (e->first)
		(void)!write(e->wfd, &b, 1);
	while (!stop_flag && now() < t_end) {
		if (read(e->rfd, &b, 1) != 1)
			break;
		if (write(e->wfd, &b, 1) != 1)
			break;
	}
	return NULL;
}

static void make_pair(int i, struct end *a, struct end *b)
{
	int p1[2], p2[2];
	if (pipe(p1) || pipe(p2))
		die("pipe");
	*a = (struct end){ p2[0], p1[1], 1, i };
	*b = (struct end){ p1[0], p2[1], 0, i };
}

static void threads_workload(int n)
{
	pthread_t *t = calloc(2 * n, sizeof *t);
	struct end *e = calloc(2 * n, sizeof *e);
	for (int i = 0; i < n; i++) {
		make_pair(i, &e[2 * i], &e[2 * i + 1]);
		pthread_create(&t[2 * i + 1], NULL, pingpong, &e[2 * i + 1]);
		pthread_create(&t[2 * i], NULL, pingpong, &e[2 * i]);
	}
	while (now() < t_end)
		usleep(100000);
	stop_flag = 1;
	/* A pair blocked in read is stopped by the process's exit below. */
	_exit(0);
}

static void processes_workload(int n)
{
	for (int i = 0; i < n; i++) {
		struct end a, b;
		make_pair(i, &a, &b);
		if (fork() == 0) {
			pingpong(&b);
			_exit(0);
		}
		if (fork() == 0) {
			pingpong(&a);
			_exit(0);
		}
		close(a.rfd); close(a.wfd); close(b.rfd); close(b.wfd);
	}
	while (wait(NULL) > 0)
		;
	_exit(0);
}

/* idle-storm: one thread per worker of one process blocks briefly and wakes on its CPU. */
static void *idle_thread(void *arg)
{
	int id = (int)(long)arg;
	if (pin)
		pin_to(0, id);
	while (now() < t_end)
		usleep(200);
	return NULL;
}

/* migrate-storm: one process per worker, walked across every CPU, then exiting. */
static void migrate_worker(int id)
{
	while (now() < t_end) {
		pid_t c = fork();
		if (c == 0) {
			touch_pages(8);
			for (int k = 0; k < ncpus; k++) {
				pin_to(0, id + k);
				touch_pages(1);
			}
			_exit(0);
		}
		if (c > 0)
			waitpid(c, NULL, 0);
	}
	_exit(0);
}

/* munmap-storm: threads of one process map, touch and unmap memory: flush IPIs to the
 * CPUs running the mm. */
static void *munmap_thread(void *arg)
{
	int id = (int)(long)arg;
	if (pin)
		pin_to(0, id);
	while (now() < t_end) {
		char *p = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			continue;
		for (int i = 0; i < 16; i++)
			p[i * 4096] = 1;
		munmap(p, 16 * 4096);
	}
	return NULL;
}

/* hotplug: CPUs 1..n-1 go offline and come back while exit-storm spawners and threads
 * pairs run. */
static void hotplug_driver(void)
{
	int k = 0;
	while (now() < t_end && ncpus > 1) {
		int cpu = 1 + k++ % (ncpus - 1);
		char path[128];
		snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/online", cpu);
		if (write_file(path, "0"))
			say("offline cpu%d failed: %s", cpu, strerror(errno));
		usleep(20000);
		if (write_file(path, "1"))
			say("online cpu%d failed: %s", cpu, strerror(errno));
		usleep(20000);
	}
	_exit(0);
}

static void run_workload(void)
{
	int n = pairs > 0 ? pairs : ncpus;
	pid_t kids[4];
	int nkids = 0;
	t_end = now() + seconds;
	if (!strcmp(workload, "exit-storm") || !strcmp(workload, "migrate-storm")) {
		for (int i = 0; i < n; i++) {
			pid_t c = fork();
			if (c == 0) {
				if (workload[0] == 'e')
					exit_storm_spawner(i);
				migrate_worker(i);
			}
		}
	} else if (!strcmp(workload, "threads") || !strcmp(workload, "processes")) {
		pid_t c = fork();
		if (c == 0) {
			if (workload[0] == 't')
				threads_workload(n);
			processes_workload(n);
		}
	} else if (!strcmp(workload, "idle-storm") || !strcmp(workload, "munmap-storm")) {
		pid_t c = fork();
		if (c == 0) {
			pthread_t *t = calloc(n, sizeof *t);
			for (int i = 0; i < n; i++)
				pthread_create(&t[i], NULL, workload[0] == 'i' ? idle_thread : munmap_thread,
					       (void *)(long)i);
			for (int i = 0; i < n; i++)
				pthread_join(t[i], NULL);
			_exit(0);
		}
	} else if (!strcmp(workload, "hotplug")) {
		for (int i = 0; i < ncpus; i++)
			if (fork() == 0)
				exit_storm_spawner(i);
		if ((kids[nkids++] = fork()) == 0)
			threads_workload(ncpus > 1 ? ncpus / 2 : 1);
		if ((kids[nkids++] = fork()) == 0)
			hotplug_driver();
	} else {
		say("FAILED: unknown workload %s", workload);
		power_off();
	}
	/* Wait for every child; a ping-pong end blocked after the deadline is killed. */
	for (;;) {
		pid_t p = waitpid(-1, NULL, WNOHANG);
		if (p < 0)
			break;
		if (p == 0) {
			if (now() > t_end + 2) {
				kill(-1, SIGKILL);
			}
			usleep(50000);
		}
	}
	/* hotplug: bring every CPU back. */
	for (int cpu = 1; cpu < ncpus; cpu++) {
		char path[128];
		snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/online", cpu);
		write_file(path, "1");
	}
}

/* ---- tracing --------------------------------------------------------------------- */

static void enable_events(void)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%d", bufkb);
	if (write_file(TRACEFS "/buffer_size_kb", buf))
		say("cannot set buffer_size_kb=%d: %s", bufkb, strerror(errno));
	write_file(TRACEFS "/tracing_on", "0");
	write_file(TRACEFS "/trace", "");
	write_file(TRACEFS "/set_event", "");
	/* The TGID column: which process each traced task belongs to (threads share an mm). */
	if (write_file(TRACEFS "/options/record-tgid", "1"))
		say("cannot set options/record-tgid: %s", strerror(errno));
	char copy[sizeof events];
	snprintf(copy, sizeof copy, "%s", events);
	for (char *ev = strtok(copy, ","); ev; ev = strtok(NULL, ",")) {
		if (append_file(TRACEFS "/set_event", ev))
			say("event missing: %s", ev);
		else
			say("event enabled: %s", ev);
	}
}

static int open_trace_port(void)
{
	DIR *d = opendir("/dev");
	struct dirent *de;
	char path[300] = "";
	if (!d)
		die("opendir /dev");
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "vport", 5)) {
			snprintf(path, sizeof path, "/dev/%s", de->d_name);
			break;
		}
	closedir(d);
	if (!path[0]) {
		errno = ENODEV;
		die("no virtio serial port (/dev/vport*) for the trace");
	}
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		die(path);
	return fd;
}

static int trace_port = -1;

static void dump_trace(int phase)
{
	if (trace_port < 0)
		trace_port = open_trace_port();
	int out = trace_port;
	char head[160];
	int hl = snprintf(head, sizeof head, "# lazymm-lab: phase %d pairs=%d pin=%d\n", phase, pairs, pin);
	(void)!write(out, head, hl);
	int in = open(TRACEFS "/trace", O_RDONLY);
	if (in < 0)
		die(TRACEFS "/trace");
	static char buf[1 << 16];
	unsigned long long total = 0;
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0) {
		char *p = buf;
		while (n > 0) {
			ssize_t w = write(out, p, n);
			if (w <= 0)
				die("write trace port");
			p += w;
			n -= w;
			total += w;
		}
	}
	char end[128];
	int len = snprintf(end, sizeof end, "# lazymm-lab: end of phase %d, %llu bytes\n", phase, total);
	(void)!write(out, end, len);
	fsync(out);
	close(in);
	say("trace of phase %d written: %llu bytes", phase, total);
}

/* Prints each CPU's last-level cache (the CPUs sharing it) and package, for the host's
 * placement table. */
static void print_topology(void)
{
	for (int cpu = 0; cpu < ncpus; cpu++) {
		char path[160], llc[256] = "", pkg[32] = "?";
		static const char *idx[] = { "index3", "index2" };
		for (int k = 0; k < 2 && !llc[0]; k++) {
			snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/%s/shared_cpu_list", cpu, idx[k]);
			int fd = open(path, O_RDONLY);
			if (fd >= 0) {
				ssize_t n = read(fd, llc, sizeof llc - 1);
				llc[n > 0 ? n : 0] = 0;
				close(fd);
			}
		}
		snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
		int fd = open(path, O_RDONLY);
		if (fd >= 0) {
			ssize_t n = read(fd, pkg, sizeof pkg - 1);
			pkg[n > 0 ? n : 0] = 0;
			close(fd);
		}
		llc[strcspn(llc, "\n")] = 0;
		pkg[strcspn(pkg, "\n")] = 0;
		say("cpu %d llc %s package %s", cpu, llc[0] ? llc : "-", pkg);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "lab-exit-child"))
		return 0;
	if (getpid() != 1) {
		fprintf(stderr, "this is the lazymm lab guest's /init; it runs as pid 1 only\n");
		return 2;
	}
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL))
		die("mount tracefs (is CONFIG_TRACING set?)");
	read_cmdline();
	ncpus = get_nprocs();
	struct utsname u;
	if (!uname(&u))
		say("kernel %s %s %s", u.release, u.version, u.machine);
	say("booted: %d CPUs online, workload %s, %d s, phases %s", ncpus, workload, seconds,
	    phases);
	print_topology();
	char list[sizeof phases];
	snprintf(list, sizeof list, "%s", phases);
	int phase = 0;
	char *save = NULL;
	for (char *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save), phase++) {
		pairs = atoi(item);
		char *colon = strchr(item, ':');
		pin = colon ? atoi(colon + 1) : 0;
		say("phase %d start: pairs %d pin %d", phase, pairs, pin);
		/*
		 * Events are enabled once, before the first phase: enabling one patches the
		 * kernel's text (static keys, int3 breakpoints), which multi-threaded TCG can
		 * race with on other vCPUs ("Oops: int3"). Between phases only the buffer is
		 * cleared and tracing_on flipped, which patches nothing.
		 */
		if (phase == 0)
			enable_events();
		write_file(TRACEFS "/tracing_on", "0");
		write_file(TRACEFS "/trace", "");
		write_file(TRACEFS "/tracing_on", "1");
		run_workload();
		write_file(TRACEFS "/tracing_on", "0");
		say("phase %d workload done", phase);
		dump_trace(phase);
	}
	say("power off");
	power_off();
	return 0;
}
