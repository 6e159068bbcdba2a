/*
 * The attacker of tests/security: a static program run inside a sandvisor
 * container that tries to reach the host, and prints what it reached, one
 * finding a line, for the test to parse. It always exits 0.
 *
 *   scan MARKER [DEV INO]  As the container's init, until SIGUSR1 or SIGTERM:
 *                          hammers /proc/PID/{fd/N,exe,cwd,root} of each
 *                          new pid, keeping every link it can open (an
 *                          O_PATH descriptor outlives the process) until
 *                          the pid exits or exec's a file of the container;
 *                          then reports, one line per link and target with
 *                          how many pids: each descriptor >= 3, each exe,
 *                          cwd, root (or directory on 0-2) outside its own
 *                          root, the runtime binary (DEV:INO) if opened and
 *                          whether it reopens for writing, and the host
 *                          file MARKER if read by walking `..` from an
 *                          escaped directory.
 *   cwd MARKER             Where is its cwd, and is MARKER reachable from it.
 *   sockets HEX DIR...     connect(2)s to every socket under the DIRs and in
 *                          /proc/net/unix; sends the frame HEX to each
 *                          ctl.sock and prints the reply.
 *   ping PATH HEX          Sends the frame HEX to the socket PATH.
 *   proc SPEC...           M:PATH must be absent or empty, R:PATH on a
 *                          read-only mount, W:PATH must refuse a write of its
 *                          own value.
 *
 * Lines: READY, FINDING ..., MARKER ..., RUNTIME ..., CWD ..., CONNECTED
 * ..., REPLY ..., EXPOSED/WRITABLE/WROTE ..., DONE ...
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static struct stat root_st;

static void on_signal(int sig) { (void)sig; stop = 1; }

/* Walks `..` from the directory `fd` to where it stops climbing. Returns
 * 1 if that is this process's root, 0 if not, -1 if it cannot tell; the
 * top is left in *top when asked for. */
static int dir_inside(int fd, int *top) {
    int cur = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (top) *top = -1;
    for (int i = 0; cur >= 0 && i < 4096; i++) {
        struct stat st, up_st;
        int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (up < 0 || fstat(cur, &st) < 0 || fstat(up, &up_st) < 0) break;
        if (st.st_dev == up_st.st_dev && st.st_ino == up_st.st_ino) {
            close(up);
            if (top) *top = cur; else close(cur);
            return st.st_dev == root_st.st_dev && st.st_ino == root_st.st_ino;
        }
        close(cur);
        cur = up;
    }
    if (cur >= 0) close(cur);
    return -1;
}

static void link_of(int fd, char *buf, size_t len) {
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(self, buf, len - 1);
    buf[n < 0 ? 0 : n] = 0;
}

/* Whether what `fd` refers to is inside this process's root. */
static int inside(int fd) {
    struct stat st, named;
    if (fstat(fd, &st) < 0) return -1;
    if (S_ISDIR(st.st_mode)) return dir_inside(fd, NULL);
    char target[4096];
    link_of(fd, target, sizeof target);
    if (target[0] != '/' || strstr(target, " (deleted)")) return 0;
    return stat(target, &named) == 0 && named.st_dev == st.st_dev && named.st_ino == st.st_ino;
}

/* Reads the host file `marker` (an absolute path) from the top reached by
 * walking up from the directory `fd`; prints it if it could. */
static int try_marker(int fd, const char *marker, const char *via) {
    int top;
    if (dir_inside(fd, &top) != 0 || top < 0) return 0;
    int m = openat(top, marker + 1, O_RDONLY | O_CLOEXEC);
    close(top);
    if (m < 0) return 0;
    char buf[256];
    ssize_t n = read(m, buf, sizeof buf - 1);
    close(m);
    buf[n < 0 ? 0 : n] = 0;
    for (char *c = buf; *c; c++) if (*c == '\n') *c = ' ';
    printf("MARKER via=%s content=%s\n", via, buf);
    return 1;
}

/* ---- scan ---- */

/* What one pid's links were found to be, by link and target, over all
 * pids: each a line of the report. */
struct finding { char what[24]; char target[512]; const char *type; int in, pids, first; };
static struct finding findings[1024];
static int nfindings, caught;
static long probes, opened;
/* The runtime binary opened through exe (O_PATH) and exe-rdonly. */
static struct { int pids, first; const char *write; } runtime[2];
static const char *marker_path;
static dev_t rt_dev;
static ino_t rt_ino;

/* Reports what `fd`, opened through /proc/PID/`what`, leads to; closes it. */
static int judge(int pid, const char *what, int fd) {
    struct stat st;
    char target[512];
    int num = -1, found = 0;
    fstat(fd, &st);
    link_of(fd, target, sizeof target);
    int in = inside(fd);
    /* pipe:[123] and socket:[456] of each pid count as one. */
    char *bracket = strstr(target, ":[");
    if (bracket) strcpy(bracket, ":[*]");
    int is_fd = sscanf(what, "fd/%d", &num) == 1;
    const char *type = S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" : "other";
    if (rt_ino && st.st_dev == rt_dev && st.st_ino == rt_ino) {
        /* The runtime binary: could it be reopened for writing? */
        int r = !strcmp(what, "exe") ? 0 : 1;
        if (!runtime[r].pids++) {
            char self[64];
            snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
            int w = open(self, O_WRONLY | O_CLOEXEC);
            runtime[r].write = w >= 0 ? "OPENED" : strerrorname_np(errno);
            if (w >= 0) close(w);
            runtime[r].first = pid;
        }
    }
    /* Stdio is the caller's to pass; anything else is the runtime's. */
    if (is_fd ? num >= 3 || (S_ISDIR(st.st_mode) && in != 1) : in != 1) {
        found = 1;
        int i;
        for (i = 0; i < nfindings; i++)
            if (!strcmp(findings[i].what, what) && !strcmp(findings[i].target, target)) break;
        if (i < nfindings) {
            findings[i].pids++;
        } else if (nfindings < 1024) {
            struct finding *f = &findings[nfindings++];
            snprintf(f->what, sizeof f->what, "%.23s", what);
            snprintf(f->target, sizeof f->target, "%.511s", target);
            f->type = type; f->in = in; f->pids = 1; f->first = pid;
            if (S_ISDIR(st.st_mode)) {
                char via[64];
                snprintf(via, sizeof via, "/proc/%d/%.23s", pid, what);
                try_marker(fd, marker_path, via);
            }
        }
    }
    close(fd);
    return found;
}

/* Opens every link of `pid` it can, over and over, while it lives and
 * has not exec'd into the container's own files (an O_PATH descriptor
 * stays good after that); then judges what it got. Returns 0 if there
 * was no such pid. */
static int hammer(int pid) {
    static struct { char what[24]; int fd; dev_t dev; ino_t ino; } got[256];
    int ngot = 0;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d", pid);
    int dfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return 0;
#define KEEP(name, h)                                                                    \
    do {                                                                                 \
        struct stat st_;                                                                 \
        int i_;                                                                          \
        opened++;                                                                        \
        fstat(h, &st_);                                                                  \
        for (i_ = 0; i_ < ngot; i_++)                                                    \
            if (got[i_].dev == st_.st_dev && got[i_].ino == st_.st_ino &&                \
                !strcmp(got[i_].what, name)) break;                                      \
        if (i_ < ngot || ngot == 256) { close(h); break; }                               \
        snprintf(got[ngot].what, sizeof got[ngot].what, "%.23s", name);                     \
        got[ngot].fd = h; got[ngot].dev = st_.st_dev; got[ngot].ino = st_.st_ino;        \
        ngot++;                                                                          \
    } while (0)
    dev_t exe_dev = 0;
    ino_t exe_ino = 0;
    for (long i = 0; i < 100000 && !stop; i++) {
        probes++;
        int fddir = openat(dfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fddir < 0 && (errno == ENOENT || errno == ESRCH)) break;
        if (fddir >= 0) {
            long n;
            while ((n = syscall(SYS_getdents64, fddir, buf, sizeof buf)) > 0) {
                for (long off = 0; off < n;) {
                    struct dirent64 *d = (struct dirent64 *)(buf + off);
                    off += d->d_reclen;
                    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
                    int h = openat(fddir, d->d_name, O_PATH | O_CLOEXEC);
                    if (h >= 0) {
                        char what[24];
                        snprintf(what, sizeof what, "fd/%.16s", d->d_name);
                        KEEP(what, h);
                    }
                }
            }
            close(fddir);
        }
        static const char *const links[] = {"cwd", "root"};
        for (int l = 0; l < 2; l++) {
            int h = openat(dfd, links[l], O_PATH | O_CLOEXEC);
            if (h >= 0) KEEP(links[l], h);
        }
        int exe = openat(dfd, "exe", O_PATH | O_CLOEXEC);
        if (exe < 0 && errno != EACCES && errno != EPERM) break; /* exited, or no room */
        if (exe < 0) continue; /* not dumpable (yet) */
        struct stat st;
        if (fstat(exe, &st) == 0 && (st.st_dev != exe_dev || st.st_ino != exe_ino)) {
            exe_dev = st.st_dev;
            exe_ino = st.st_ino;
            int rd = openat(dfd, "exe", O_RDONLY | O_CLOEXEC);
            if (rd >= 0) KEEP("exe-rdonly", rd);
            int done = inside(exe) == 1;
            KEEP("exe", exe);
            if (done) break; /* exec'd into the container's own binary */
        } else {
            close(exe);
        }
    }
#undef KEEP
    close(dfd);
    int found = 0;
    for (int i = 0; i < ngot; i++) found |= judge(pid, got[i].what, got[i].fd);
    caught += found;
    return 1;
}

static int highest_pid(void) {
    int high = 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int p = atoi(e->d_name);
        if (p > high && p != getpid()) high = p;
    }
    closedir(d);
    return high;
}

static int scan(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    printf("READY\n");
    int me = getpid(), next = 2, pids = 0;
    for (long round = 0; !stop; round++) {
        /* Pids come in order: hammer the next ones. */
        for (int p = next; p < next + 8 && !stop; p++) {
            if (p != me && hammer(p)) {
                pids++;
                next = p + 1;
                break;
            }
        }
        /* Some were skipped: catch up. */
        if (round % 256 == 255) {
            int high = highest_pid();
            if (high >= next + 8) next = high;
        }
    }
    for (int i = 0; i < nfindings; i++) {
        struct finding *f = &findings[i];
        printf("FINDING link=%s type=%s inside=%d pids=%d first_pid=%d target=%s\n", f->what,
               f->type, f->in, f->pids, f->first, f->target);
    }
    for (int r = 0; r < 2; r++)
        if (runtime[r].pids)
            printf("RUNTIME link=%s pids=%d first_pid=%d write=%s\n", r ? "exe-rdonly" : "exe",
                   runtime[r].pids, runtime[r].first, runtime[r].write);
    printf("DONE pids=%d caught=%d probes=%ld opened=%ld findings=%d\n", pids, caught, probes,
           opened, nfindings);
    return 0;
}

/* ---- cwd ---- */

static int cwd_mode(const char *marker) {
    char buf[4096];
    long n = syscall(SYS_getcwd, buf, sizeof buf);
    if (n <= 0) snprintf(buf, sizeof buf, "?%s", strerrorname_np(errno));
    int here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int in = here < 0 ? -1 : dir_inside(here, NULL);
    printf("CWD inside=%d raw=%s\n", in, buf);
    if (here >= 0 && in != 1) try_marker(here, marker, ".");
    return 0;
}

/* ---- sockets ---- */

static unsigned char frame[4096];
static size_t frame_len;

static void unhex(const char *hex) {
    for (frame_len = 0; hex[0] && hex[1] && frame_len < sizeof frame; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        frame[frame_len++] = (unsigned char)v;
    }
}

/* Sends the frame on `s` and prints the reply frame as hex. */
static void ping(int s, const char *path) {
    struct timeval tv = {5, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (write(s, frame, frame_len) != (ssize_t)frame_len) {
        printf("REPLY path=%s send=%s\n", path, strerrorname_np(errno));
        return;
    }
    static unsigned char reply[65536];
    size_t got = 0, want = 8;
    while (got < want && got < sizeof reply) {
        ssize_t n = read(s, reply + got, sizeof reply - got);
        if (n <= 0) break;
        got += n;
        if (got >= 8)
            want = 8 + ((size_t)reply[4] << 24 | (size_t)reply[5] << 16 |
                        (size_t)reply[6] << 8 | reply[7]);
    }
    if (got == 0) { printf("REPLY path=%s closed\n", path); return; }
    printf("REPLY path=%s hex=", path);
    for (size_t i = 0; i < got; i++) printf("%02x", reply[i]);
    printf("\n");
}

static int try_connect(const char *path, int quiet) {
    static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) return -1;
    strcpy(a.sun_path, path);
    int err = 0;
    for (int t = 0; t < 3; t++) {
        int s = socket(AF_UNIX, types[t] | SOCK_CLOEXEC, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) return s;
        err = errno;
        close(s);
        if (err != EPROTOTYPE) break;
    }
    if (!quiet) printf("CONNECT_ERR path=%s errno=%s\n", path, strerrorname_np(err));
    return -1;
}

static char seen[512][512];
static int nseen;
static struct { dev_t dev; ino_t ino; } seen_ino[512];

static void try_socket(const char *path) {
    struct stat st;
    if (nseen == 512 || stat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) return;
    for (int i = 0; i < nseen; i++)
        if (seen_ino[i].dev == st.st_dev && seen_ino[i].ino == st.st_ino) return;
    seen_ino[nseen].dev = st.st_dev; seen_ino[nseen].ino = st.st_ino;
    snprintf(seen[nseen++], 512, "%s", path);
    int s = try_connect(path, 1);
    if (s < 0) return;
    printf("CONNECTED path=%s\n", path);
    size_t l = strlen(path);
    if (l >= 8 && strcmp(path + l - 8, "ctl.sock") == 0) ping(s, path);
    close(s);
}

static void walk(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) < 0) continue;
        if (S_ISSOCK(st.st_mode)) try_socket(path);
        else if (S_ISDIR(st.st_mode) && depth < 8) walk(path, depth + 1);
    }
    closedir(d);
}

static int sockets(int argc, char **argv) {
    unhex(argv[0]);
    for (int i = 1; i < argc; i++) walk(argv[i], 0);
    FILE *f = fopen("/proc/net/unix", "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (!p) continue;
        p[strcspn(p, "\n")] = 0;
        try_socket(p);
    }
    if (f) fclose(f);
    printf("DONE sockets=%d\n", nseen);
    return 0;
}

/* ---- proc ---- */

static int proc_mode(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        char kind = argv[i][0];
        const char *path = argv[i] + 2;
        struct stat st;
        if (kind == 'M') {
            if (stat(path, &st) < 0) continue;
            long count = 0;
            if (S_ISDIR(st.st_mode)) {
                DIR *d = opendir(path);
                struct dirent *e;
                while (d && (e = readdir(d)))
                    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) count++;
                if (d) closedir(d);
                if (count) printf("EXPOSED path=%s entries=%ld\n", path, count);
            } else {
                char buf[4096];
                int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                ssize_t n = fd < 0 ? 0 : read(fd, buf, sizeof buf);
                if (fd >= 0) close(fd);
                if (n > 0) printf("EXPOSED path=%s bytes=%zd\n", path, n);
            }
        } else if (kind == 'R') {
            struct statvfs vfs;
            if (statvfs(path, &vfs) == 0 && !(vfs.f_flag & ST_RDONLY))
                printf("WRITABLE path=%s\n", path);
        } else if (kind == 'W') {
            char value[4096];
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            ssize_t n = fd < 0 ? -1 : read(fd, value, sizeof value);
            if (fd >= 0) close(fd);
            if (n <= 0) { printf("UNREADABLE path=%s\n", path); continue; }
            /* The same value back: a success changes nothing but shows. */
            fd = open(path, O_WRONLY | O_CLOEXEC);
            if (fd < 0) { printf("REFUSED path=%s errno=%s\n", path, strerrorname_np(errno)); continue; }
            ssize_t w = write(fd, value, n);
            int err = errno;
            close(fd);
            if (w == n) printf("WROTE path=%s\n", path);
            else printf("REFUSED path=%s errno=%s\n", path, strerrorname_np(err));
        }
    }
    printf("DONE\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    stat("/", &root_st);
    int r = 0;
    if (argc >= 3 && !strcmp(argv[1], "scan")) {
        marker_path = argv[2];
        rt_dev = argc >= 5 ? strtoull(argv[3], 0, 10) : 0;
        rt_ino = argc >= 5 ? strtoull(argv[4], 0, 10) : 0;
        r = scan();
    }
    else if (argc >= 3 && !strcmp(argv[1], "cwd"))
        r = cwd_mode(argv[2]);
    else if (argc >= 3 && !strcmp(argv[1], "sockets"))
        r = sockets(argc - 2, argv + 2);
    else if (argc >= 4 && !strcmp(argv[1], "ping")) {
        unhex(argv[3]);
        int s = try_connect(argv[2], 0);
        if (s >= 0) { printf("CONNECTED path=%s\n", argv[2]); ping(s, argv[2]); }
        printf("DONE\n");
    } else if (argc >= 2 && !strcmp(argv[1], "proc"))
        r = proc_mode(argc - 2, argv + 2);
    else {
        fprintf(stderr, "usage: attacker scan|cwd|sockets|ping|proc ...\n");
        r = 2;
    }
    fflush(stdout);
    return r;
}
