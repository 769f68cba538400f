// The host-step tracer: preloaded (LD_PRELOAD) into every process of a traced host step, it appends one line per file
// access to $ORION_TRACE_FILE — what the process read, wrote, listed, looked for in vain, removed or made — at a fraction
// of what strace costs (src/steps/preload-trace.ts reads the lines; src/steps/trace.ts is the strace reader it mirrors).
//
// Each line is `<op>\t<absolute path>\n`, written after the real call returned, by one write() on an O_APPEND fd of
// the process's own, so lines of processes running at once never interleave. Ops: r read, w write (in place), f write
// (fresh: truncated or exclusively created), l list, a absent, p present, d remove, m make; `u\t<reason>` says the trace
// is incomplete (a static program, a walk inside glibc it cannot see, a path it cannot place), so the step is run
// every time rather than restored on a partial record. `o\t<sha256>:<size>:<x>:<path>` gives the content a regular
// file had before a process changed it in place, truncated it, renamed over it or removed it (written before that
// call), so whoever reads the trace knows what the tree held at the start. `k\t<exe>` names a process called make or
// gmake; with ORION_TRACE_MAKE_DEBUG set (make run with --debug=v), `g\t<exe>` a GNU make that spoke its debug output
// and `c\t<n|o>\t<prerequisite>\t<target>` each comparison of file times it made (newer or not): see "make's
// comparisons" below; `k`/`g` carry the process id.
//
// glibc's own functions call each other directly, not through the PLT: every public entry point that reaches the file
// system is wrapped (fopen as well as open, remove as well as unlink, execvp as well as execve).
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <libintl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <link.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
// libintl.h makes these macros when optimising: the functions are what a program calls and what is wrapped.
#undef gettext
#undef dcgettext

// Entry points of old binaries (built against glibc < 2.33) and of _FORTIFY_SOURCE builds: no header declares them now.
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
int __printf_chk(int flag, const char *fmt, ...);
int __vprintf_chk(int flag, const char *fmt, va_list ap);

extern char **environ;

#define EXPORT __attribute__((visibility("default")))
/** A comma inside one macro argument. */
#define COMMA ,
#define MISSING(e) ((e) == ENOENT || (e) == ENOTDIR)
/** Room for an absolute path: a cwd and a relative path of PATH_MAX each. */
#define ABS_MAX (2 * PATH_MAX)
/** The ELF machine this library is built for: a program for another one never loads it. */
#if defined(__x86_64__)
#define OWN_MACHINE EM_X86_64
#define BASE_GLIBC_VERSION "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define OWN_MACHINE EM_AARCH64
#define BASE_GLIBC_VERSION "GLIBC_2.17"
#else
#error "orion-trace: name this machine's ELF e_machine"
#endif
/** The trace fd is moved this high, away from the low numbers programs pass on (make's jobserver fds, `exec 3>`). */
#define HIGH_FD 1000

// ---- state, set once by init() before any process thread exists --------------------------------------------------

/** 0: not yet, 1: initialising (calls made meanwhile pass through untraced), 2: done. */
static int init_state;
/** Tracing: ORION_TRACE_FILE was set when the process started. */
static int active;
/**
 * ORION_TRACE_SINCE: the kernel's file clock (ns) when the traced run started. A file changed since cannot hold what
 * the run found at its start, so its old content is not read (a configure's thousands of `rm -f conftest*`).
 */
static unsigned long long trace_since;
static char trace_path[PATH_MAX];
/** This library's path as loaded, put back into a child's LD_PRELOAD when it lacks it. */
static char self_lib[PATH_MAX];
static char env_trace[PATH_MAX + 32];
static char env_preload[PATH_MAX + 32];
/** The trace fd and the file it must name: a program may close it or dup2 over it; then it is opened again. */
static int trace_fd = -1;
static dev_t trace_dev;
static ino_t trace_ino;

/** ORION_TRACE_MAKE_DEBUG: a GNU make here was started with --debug=v by Orion, for its comparisons (not to print). */
static int make_debug;

static void init(void);

/** Whether this call is to be recorded (initialising on the first call that comes before the constructor). */
static int tracing(void) {
  if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 2) init();
  return __atomic_load_n(&init_state, __ATOMIC_ACQUIRE) == 2 && active;
}

// ---- the real functions ------------------------------------------------------------------------------------------

static void *resolve(void **slot, const char *name) {
  void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!f) {
    f = dlsym(RTLD_NEXT, name);
    // The pre-2.33 stat entry points are compat symbols only: asked for by the architecture's base version.
    if (!f) f = dlvsym(RTLD_NEXT, name, BASE_GLIBC_VERSION);
    __atomic_store_n(slot, f, __ATOMIC_RELEASE);
  }
  return f;
}

#define REAL_SLOT(name) static void *real_##name;
#define REAL(name) ((__typeof__(&name))resolve(&real_##name, #name))
/** Calls the real function, or fails with ENOSYS when this libc has none. */
#define CALL(name, fail, ...) (REAL(name) ? REAL(name)(__VA_ARGS__) : (errno = ENOSYS, (fail)))

/** Every function wrapped: each has a slot for the real one. */
#define WRAPPED(X)                                                                                                    \
  X(open) X(open64) X(openat) X(openat64) X(__open_2) X(__open64_2) X(__openat_2) X(__openat64_2) X(creat)            \
  X(creat64) X(fopen) X(fopen64) X(freopen) X(freopen64) X(opendir) X(scandir) X(scandir64) X(scandirat) X(stat)      \
  X(stat64) X(lstat) X(lstat64) X(fstatat) X(fstatat64) X(__xstat) X(__xstat64) X(__lxstat) X(__lxstat64)             \
  X(__fxstatat) X(__fxstatat64) X(statx) X(access) X(faccessat) X(eaccess) X(euidaccess) X(truncate) X(truncate64)    \
  X(chmod) X(fchmodat) X(lchmod) X(unlink) X(unlinkat) X(rmdir) X(remove) X(rename) X(renameat) X(renameat2)          \
  X(mkdir) X(mkdirat) X(symlink) X(symlinkat) X(link) X(linkat) X(mkstemp) X(mkstemp64) X(mkostemp) X(mkostemp64)     \
  X(mkstemps) X(mkstemps64) X(mkostemps) X(mkostemps64) X(mkdtemp) X(execve) X(execveat) X(execvpe) X(posix_spawn)    \
  X(posix_spawnp) X(posix_spawn_file_actions_addopen) X(posix_spawn_file_actions_addchdir_np)                         \
  X(posix_spawn_file_actions_addfchdir_np) X(system) X(popen) X(glob) X(glob64) X(nftw) X(nftw64) X(ftw) X(ftw64)     \
  X(fts_open) X(fts64_open) X(syscall) X(dcgettext) X(gettext) X(vprintf) X(__vprintf_chk) X(putc) X(puts) X(putchar) X(_IO_putc)

WRAPPED(REAL_SLOT)

// ---- writing records ---------------------------------------------------------------------------------------------

/** The trace fd, opened again when the program closed it or put another file at its number. */
static int trace_out(void) {
  int fd = __atomic_load_n(&trace_fd, __ATOMIC_ACQUIRE);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == trace_dev && st.st_ino == trace_ino) return fd;
  // Never created here: a process that outlives its step (the file removed) records nothing.
  int nfd = CALL(open, -1, trace_path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (nfd < 0) return -1;
  int high = fcntl(nfd, F_DUPFD_CLOEXEC, HIGH_FD);
  if (high >= 0) {
    close(nfd);
    nfd = high;
  }
  if (fstat(nfd, &st) == 0) {
    trace_dev = st.st_dev;
    trace_ino = st.st_ino;
  }
  __atomic_store_n(&trace_fd, nfd, __ATOMIC_RELEASE);
  return nfd;
}

/** Appends one record in one write(); a reason's newlines become spaces, a path with one cannot be recorded. */
static void emit(char op, const char *text) {
  char line[ABS_MAX + 4];
  size_t n = strlen(text);
  if (n + 3 > sizeof line) {
    emit('u', "a path longer than the tracer's buffer");
    return;
  }
  if (op != 'u' && memchr(text, '\n', n)) {
    emit('u', "a path with a newline");
    return;
  }
  line[0] = op;
  line[1] = '\t';
  memcpy(line + 2, text, n);
  for (size_t i = 2; i < n + 2; i++)
    if (line[i] == '\n') line[i] = ' ';
  line[n + 2] = '\n';
  int fd = trace_out();
  if (fd >= 0 && write(fd, line, n + 3) < 0) { /* a full disk: the step's own writes fail too */ }
}

/** A record naming this process (`k`, `g`: a make, and one that spoke). */
static void emit_pid(char op) {
  char pid[24];
  snprintf(pid, sizeof pid, "%d", (int)getpid());
  emit(op, pid);
}

/** An untraceable record naming a path: "<why>: <path>". */
static void emit_why(const char *why, const char *path) {
  char text[ABS_MAX];
  snprintf(text, sizeof text, "%s: %s", why, path);
  emit('u', text);
}

enum { PLACED = 0, SKIP = 1, UNPLACED = -1 };

/**
 * `path` made absolute in `out` (ABS_MAX bytes): as it is when absolute, else after the cwd or the directory `dirfd`
 * names. SKIP for no path or an empty one (an AT_EMPTY_PATH call on an fd already recorded when it was opened);
 * UNPLACED, an untraceable record written, when the base cannot be known. Left unnormalised: the reader resolves.
 */
static int place(int dirfd, const char *path, char *out) {
  if (!path || !*path) return SKIP;
  size_t n = strlen(path);
  if (path[0] == '/') {
    if (n >= ABS_MAX) return emit('u', "a path longer than the tracer's buffer"), UNPLACED;
    memcpy(out, path, n + 1);
    return PLACED;
  }
  size_t base;
  if (dirfd == AT_FDCWD) {
    if (!getcwd(out, PATH_MAX)) return emit('u', "a relative path in a working directory it cannot name"), UNPLACED;
    base = strlen(out);
  } else {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t got = readlink(link, out, PATH_MAX - 1);
    if (got <= 0 || out[0] != '/') return emit('u', "a path relative to an fd that names no directory"), UNPLACED;
    out[got] = 0;
    base = (size_t)got;
    static const char deleted[] = " (deleted)";
    if (base > sizeof deleted - 1 && strcmp(out + base - (sizeof deleted - 1), deleted) == 0)
      return emit('u', "a path relative to a removed directory"), UNPLACED;
  }
  if (base + 1 + n >= ABS_MAX) return emit('u', "a path longer than the tracer's buffer"), UNPLACED;
  out[base] = '/';
  memcpy(out + base + 1, path, n + 1);
  return PLACED;
}

/** Records `op` on `path` (relative to dirfd); errno is the caller's to keep. */
static void record(char op, int dirfd, const char *path) {
  char abs[ABS_MAX];
  if (place(dirfd, path, abs) == PLACED) emit(op, abs);
}

/** Success: `op`; not found: absent (the stat family, exec, opendir). */
static void record_found(char op, int dirfd, const char *path, int ok, int err) {
  if (ok) record(op, dirfd, path);
  else if (MISSING(err)) record('a', dirfd, path);
}

// ---- the old content of a file changed in place -----------------------------------------------------------------

/**
 * SHA-256 (FIPS 180-4), for the content a file had when a process opened it to change it in place (`touch`, `>>`,
 * O_RDWR): the step cache keys such a step by that content, which nothing else saw before the step changed it.
 */
struct sha256 {
  uint32_t h[8];
  uint64_t len;
  unsigned char buf[64];
  size_t used;
};

static const uint32_t SHA_K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(struct sha256 *c, const unsigned char *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
    h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
  }
  c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d, c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void sha256_init(struct sha256 *c) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, h0, sizeof h0);
  c->len = 0;
  c->used = 0;
}

static void sha256_update(struct sha256 *c, const unsigned char *p, size_t n) {
  c->len += n;
  while (n > 0) {
    size_t take = 64 - c->used < n ? 64 - c->used : n;
    memcpy(c->buf + c->used, p, take);
    c->used += take, p += take, n -= take;
    if (c->used == 64) sha256_block(c, c->buf), c->used = 0;
  }
}

static void sha256_hex(struct sha256 *c, char out[65]) {
  uint64_t bits = c->len * 8;
  unsigned char pad = 0x80, zero = 0, lenb[8];
  sha256_update(c, &pad, 1);
  while (c->used != 56) sha256_update(c, &zero, 1);
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(c, lenb, 8);
  for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", c->h[i]);
}

/** Files larger than this are not hashed: their step is then cached only when the look-up saw them first. */
#define OLD_CONTENT_MAX (4 << 20)

/**
 * Records `o\t<sha256 hex>:<size>:<0|1 owner-executable>:<path>`: the content `abs` had when it was opened to be
 * changed in place, read before the process could write to it. Nothing when it did not exist or cannot be read whole.
 */
static void record_old_content(const char *abs) {
  int fd = CALL(open, -1, abs, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > OLD_CONTENT_MAX ||
      (trace_since && (unsigned long long)st.st_ctim.tv_sec * 1000000000ULL + (unsigned long long)st.st_ctim.tv_nsec > trace_since)) {
    close(fd);
    return;
  }
  struct sha256 c;
  sha256_init(&c);
  unsigned char buf[4096];
  off_t total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return;
    }
    if (n == 0) break;
    sha256_update(&c, buf, (size_t)n);
    total += n;
  }
  close(fd);
  if (total != st.st_size) return; /* changing under us: no claim */
  char text[ABS_MAX];
  char hex[65];
  sha256_hex(&c, hex);
  int n = snprintf(text, sizeof text, "%s:%lld:%d:%s", hex, (long long)total, (st.st_mode & S_IXUSR) ? 1 : 0, abs);
  if (n > 0 && (size_t)n < sizeof text) emit('o', text);
}

/**
 * Before a call replaces or removes `path` (a rename's destination, an unlink): the content the file had, recorded
 * as for an in-place change, since after the call nothing can tell it. A name that is no regular file records nothing.
 */
static void record_replaced(int dirfd, const char *path) {
  int e = errno;
  char abs[ABS_MAX];
  if (path && tracing() && place(dirfd, path, abs) == PLACED) record_old_content(abs);
  errno = e;
}

/** An open by its flags, as trace.ts's applyOpen reads them from strace. */
static void record_open(int dirfd, const char *path, int flags, int ok, int err) {
  if (!ok) {
    if (MISSING(err)) record('a', dirfd, path);
    return;
  }
  // An unnamed file in a directory: nothing at any path (it gets a name through linkat, recorded then).
  if ((flags & O_TMPFILE) == O_TMPFILE) return;
  int acc = flags & O_ACCMODE;
  if (flags & O_DIRECTORY) record('l', dirfd, path);
  else if (acc == O_WRONLY || acc == O_RDWR || (flags & (O_CREAT | O_TRUNC))) {
    char abs[ABS_MAX];
    if (place(dirfd, path, abs) != PLACED) return;
    if (acc == O_RDWR) emit('r', abs);
    int fresh = (flags & O_TRUNC) || ((flags & O_CREAT) && (flags & O_EXCL));
    if (!fresh) record_old_content(abs);
    emit(fresh ? 'f' : 'w', abs);
  } else record('r', dirfd, path);
}

/** A rename reads and removes its source and freshly writes its destination; a link leaves its source in place. */
static void record_move(int fromfd, const char *from, int tofd, const char *to, int is_link) {
  char a[ABS_MAX], b[ABS_MAX];
  if (place(fromfd, from, a) != PLACED || place(tofd, to, b) != PLACED) return;
  emit('r', a);
  if (!is_link) emit('d', a);
  emit('f', b);
}

/** mkdir: made; already there: present; its parent missing: the parent is absent. */
static void record_mkdir(int dirfd, const char *path, int ok, int err) {
  char abs[ABS_MAX];
  if (place(dirfd, path, abs) != PLACED) return;
  if (ok) emit('m', abs);
  else if (err == EEXIST) emit('p', abs);
  else if (MISSING(err)) {
    size_t n = strlen(abs);
    while (n > 1 && abs[n - 1] == '/') abs[--n] = 0;
    char *slash = strrchr(abs, '/');
    if (slash == abs) slash[1] = 0;
    else if (slash) *slash = 0;
    emit('a', abs);
  }
}

/** Open flags for an fopen mode ("r", "w+", "ax", "re,ccs=UTF-8"). */
static int fopen_flags(const char *mode) {
  if (!mode) return O_RDONLY;
  int flags = mode[0] == 'r' ? O_RDONLY : mode[0] == 'w' ? O_WRONLY | O_CREAT | O_TRUNC : O_WRONLY | O_CREAT | O_APPEND;
  for (const char *m = mode + 1; *m && *m != ','; m++) {
    if (*m == '+') flags = (flags & ~O_ACCMODE) | O_RDWR;
    else if (*m == 'x') flags |= O_EXCL;
  }
  return flags;
}

// ---- programs and environments (exec, posix_spawn) ----------------------------------------------------------------

/**
 * Why a program would run unseen (static, 32-bit or foreign, Go's direct system calls, set-user-ID: LD_PRELOAD does
 * not reach it), or NULL. `*missing` set when there is nothing at the path. Follows #! interpreters as the kernel does.
 */
static const char *program_blind_spot(const char *abs, int depth, int *missing, int *is_file) {
  int fd = CALL(open, -1, abs, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (MISSING(errno)) *missing = 1;
    else if (errno == EACCES && CALL(access, -1, abs, X_OK) == 0) return "a program it cannot read";
    return NULL;
  }
  const char *why = NULL;
  struct stat st;
  unsigned char head[256];
  ssize_t n = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) goto done;
  *is_file = 1;
  if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) || ((st.st_mode & S_ISGID) && st.st_gid != getegid())) {
    why = "a set-user-ID program";
    goto done;
  }
  n = pread(fd, head, sizeof head - 1, 0);
  if (n >= 2 && head[0] == '#' && head[1] == '!') {
    head[n] = 0;
    char *p = (char *)head + 2;
    while (*p == ' ' || *p == '\t') p++;
    char *end = p + strcspn(p, " \t\n");
    *end = 0;
    if (*p && depth < 4) {
      char interp[ABS_MAX];
      int gone = 0, file = 0;
      if (place(AT_FDCWD, p, interp) == PLACED) why = program_blind_spot(interp, depth + 1, &gone, &file);
    }
    goto done;
  }
  if (n < (ssize_t)sizeof(Elf64_Ehdr) || memcmp(head, ELFMAG, SELFMAG) != 0) goto done;
  Elf64_Ehdr eh;
  memcpy(&eh, head, sizeof eh);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != OWN_MACHINE) {
    why = "a program for another ELF class or machine";
    goto done;
  }
  Elf64_Phdr ph[64];
  size_t count = eh.e_phnum < 64 ? eh.e_phnum : 64;
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || pread(fd, ph, count * sizeof *ph, (off_t)eh.e_phoff) != (ssize_t)(count * sizeof *ph)) {
    why = "a program whose headers it cannot read";
    goto done;
  }
  int interp = 0;
  for (size_t i = 0; i < count; i++) interp |= ph[i].p_type == PT_INTERP;
  if (!interp) {
    why = "a static program";
    goto done;
  }
  // Go makes its own system calls, cgo or not.
  for (size_t i = 0; i < count && !why; i++) {
    if (ph[i].p_type != PT_NOTE) continue;
    unsigned char notes[1024];
    size_t len = ph[i].p_filesz < sizeof notes ? ph[i].p_filesz : sizeof notes;
    if (pread(fd, notes, len, (off_t)ph[i].p_offset) != (ssize_t)len) continue;
    for (size_t at = 0; at + sizeof(Elf64_Nhdr) <= len;) {
      Elf64_Nhdr nh;
      memcpy(&nh, notes + at, sizeof nh);
      const unsigned char *name = notes + at + sizeof nh;
      // Go's build-id note: owner "Go\0\0", type 4.
      if (nh.n_namesz == 4 && nh.n_type == 4 && at + sizeof nh + 4 <= len && memcmp(name, "Go\0\0", 4) == 0) why = "a Go program";
      at += sizeof nh + ((nh.n_namesz + 3) & ~3u) + ((nh.n_descsz + 3) & ~3u);
    }
  }
done:
  close(fd);
  return why;
}

/** Records a program about to be run: read (or absent), and untraceable when the preload would not reach it. */
static void record_program(const char *abs) {
  int missing = 0, is_file = 0;
  const char *why = program_blind_spot(abs, 0, &missing, &is_file);
  if (missing) emit('a', abs);
  // Not a file (a directory on PATH): the exec fails with EACCES, which strace's reader records nothing for either.
  else if (is_file) emit('r', abs);
  if (why) emit_why(why, abs);
}

static size_t env_count(char *const envp[]) {
  size_t n = 0;
  while (envp && envp[n]) n++;
  return n;
}

/** `list` (an LD_PRELOAD value: ':' or ' ' separated) names this library. */
static int names_self(const char *list) {
  size_t len = strlen(self_lib);
  for (const char *p = list; p && *p;) {
    size_t n = strcspn(p, ": ");
    if (n == len && memcmp(p, self_lib, len) == 0) return 1;
    p += n;
    if (*p) p++;
  }
  return 0;
}

/** The room fill_env needs for a new LD_PRELOAD entry (0: none). */
static size_t preload_room(char *const envp[]) {
  for (size_t i = 0; envp && envp[i]; i++)
    if (strncmp(envp[i], "LD_PRELOAD=", 11) == 0) return names_self(envp[i] + 11) ? 0 : strlen(envp[i]) + strlen(self_lib) + 2;
  return 0;
}

/**
 * `envp` copied into `out` (room for env_count + 3) with LD_PRELOAD naming this library and ORION_TRACE_FILE set, so
 * that `env -i` or a program clearing its environment does not take its children out of the trace. `buf` holds a
 * changed LD_PRELOAD (preload_room bytes). A different ORION_TRACE_FILE (a nested traced build) is left alone, and
 * this trace called incomplete.
 */
static void fill_env(char *const envp[], char **out, char *buf) {
  size_t n = 0;
  int preload = 0, trace = 0;
  for (size_t i = 0; envp && envp[i]; i++) {
    char *e = envp[i];
    if (strncmp(e, "LD_PRELOAD=", 11) == 0) {
      // ld.so heeds one LD_PRELOAD: a second entry is dropped rather than left to win.
      if (preload++) continue;
      if (!names_self(e + 11)) {
        sprintf(buf, "%s:%s", env_preload, e + 11);
        e = buf;
      }
    } else if (strncmp(e, "ORION_TRACE_FILE=", 17) == 0) {
      trace = 1;
      if (strcmp(e, env_trace) != 0) emit('u', "a child traced into another file (a nested trace)");
    }
    out[n++] = e;
  }
  if (!preload) out[n++] = env_preload;
  if (!trace) out[n++] = env_trace;
  out[n] = NULL;
}

/** Declares `name`, the environment `envp` with the tracer kept in it (stack only: safe in a vfork child). */
#define TRACED_ENV(name, envp)                                          \
  size_t name##_room = preload_room(envp);                              \
  char name##_buf[name##_room ? name##_room + 16 : 1];                  \
  char *name[env_count(envp) + 3];                                      \
  fill_env(envp, name, name##_buf)

/** The process's own environment made to carry the tracer (system and popen run /bin/sh with it). */
static void keep_tracer_in_environ(void) {
  const char *p = getenv("LD_PRELOAD");
  if (!p || !names_self(p)) {
    char buf[(p ? strlen(p) : 0) + sizeof self_lib + 2];
    if (p && *p) snprintf(buf, sizeof buf, "%s:%s", self_lib, p);
    else snprintf(buf, sizeof buf, "%s", self_lib);
    setenv("LD_PRELOAD", buf, 1);
  }
  if (!getenv("ORION_TRACE_FILE")) setenv("ORION_TRACE_FILE", trace_path, 1);
}

/** execve of an absolute or relative path: the program recorded first (success does not return). */
static int traced_execve(const char *path, char *const argv[], char *const envp[]) {
  char abs[ABS_MAX];
  if (place(AT_FDCWD, path, abs) == PLACED) record_program(abs);
  TRACED_ENV(env, envp);
  return CALL(execve, -1, path, argv, env);
}

/** The next `dir/file` along a PATH value (an empty entry: the cwd); 0 at its end. */
static int next_candidate(const char **cursor, const char *file, char *out) {
  const char *p = *cursor;
  if (!p) return 0;
  const char *end = strchr(p, ':');
  size_t n = end ? (size_t)(end - p) : strlen(p);
  *cursor = end ? end + 1 : NULL;
  size_t f = strlen(file);
  if (n + 1 + f >= ABS_MAX) out[0] = 0;
  else if (n == 0) memcpy(out, file, f + 1);
  else {
    memcpy(out, p, n);
    out[n] = '/';
    memcpy(out + n + 1, file, f + 1);
  }
  return 1;
}

static const char *search_path(void) {
  const char *p = getenv("PATH");
  return p ? p : "/bin:/usr/bin";
}

/** execve, and a file the kernel will not run (a script without #!) run by /bin/sh as execvp does; -1 on return. */
static int exec_or_script(const char *path, char *const argv[], char *const envp[]) {
  traced_execve(path, argv, envp);
  if (errno != ENOEXEC) return -1;
  size_t argc = 0;
  while (argv[argc]) argc++;
  char *sh[argc + 2];
  sh[0] = (char *)"/bin/sh";
  sh[1] = (char *)path;
  for (size_t i = 1; i <= argc; i++) sh[i + 1] = argv[i];
  traced_execve("/bin/sh", sh, envp);
  return -1;
}

/** execvpe as glibc does it: each PATH entry tried in turn, every miss recorded absent. */
static int traced_execvpe(const char *file, char *const argv[], char *const envp[]) {
  if (!file || !*file) return errno = ENOENT, -1;
  if (strchr(file, '/')) return exec_or_script(file, argv, envp);
  int eacces = 0;
  const char *cursor = search_path();
  char cand[ABS_MAX];
  while (next_candidate(&cursor, file, cand)) {
    if (!*cand) continue;
    exec_or_script(cand, argv, envp);
    if (errno == EACCES) eacces = 1;
    else if (!MISSING(errno) && errno != ESTALE && errno != ENODEV && errno != ETIMEDOUT) return -1;
  }
  errno = eacces ? EACCES : ENOENT;
  return -1;
}

/** posix_spawnp's search, done ahead to record it: every candidate missing, then the one it will run. */
static void record_path_search(const char *file) {
  char abs[ABS_MAX];
  if (strchr(file, '/')) {
    if (place(AT_FDCWD, file, abs) == PLACED) record_program(abs);
    return;
  }
  const char *cursor = search_path();
  char cand[ABS_MAX];
  while (next_candidate(&cursor, file, cand)) {
    if (!*cand || place(AT_FDCWD, cand, abs) != PLACED) continue;
    struct stat st;
    if (CALL(stat, -1, abs, &st) != 0) {
      if (MISSING(errno)) emit('a', abs);
      continue;
    }
    if (S_ISREG(st.st_mode) && CALL(access, -1, abs, X_OK) == 0) {
      record_program(abs);
      return;
    }
  }
}

// ---- start-up ----------------------------------------------------------------------------------------------------

static int record_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  // A dlopen'ed name is kept as it was given ("./plug.so": relative to the cwd then, taken as now); the vdso has no '/'.
  if (info->dlpi_name && strchr(info->dlpi_name, '/') && strcmp(info->dlpi_name, self_lib) != 0) record('r', AT_FDCWD, info->dlpi_name);
  return 0;
}

/** How many objects ld.so had loaded when init recorded them: a later dlopen shows as more. */
static unsigned long long objects_at_start;

static int count_objects(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  *(unsigned long long *)data = info->dlpi_adds;
  return 1;
}

static void init(void) {
  int expected = 0;
  if (!__atomic_compare_exchange_n(&init_state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return;
  const char *file = getenv("ORION_TRACE_FILE");
  Dl_info self;
  if (file && *file && strlen(file) < sizeof trace_path && dladdr((void *)init, &self) && self.dli_fname) {
    snprintf(trace_path, sizeof trace_path, "%s", file);
    // A relative LD_PRELOAD entry would name nothing once a child changed directory.
    if (self.dli_fname[0] == '/' || !realpath(self.dli_fname, self_lib)) snprintf(self_lib, sizeof self_lib, "%s", self.dli_fname);
    snprintf(env_trace, sizeof env_trace, "ORION_TRACE_FILE=%s", trace_path);
    const char *since = getenv("ORION_TRACE_SINCE");
    if (since) trace_since = strtoull(since, NULL, 10);
    snprintf(env_preload, sizeof env_preload, "LD_PRELOAD=%s", self_lib);
    active = trace_out() >= 0;
    const char *debug = getenv("ORION_TRACE_MAKE_DEBUG");
    make_debug = active && debug && strcmp(debug, "1") == 0;
  }
  // The exec family resolved now, traced or not: a vfork child must not take dlsym's locks (the rest resolve on use).
#define RESOLVE(name) resolve(&real_##name, #name);
  RESOLVE(execve) RESOLVE(execveat) RESOLVE(execvpe) RESOLVE(posix_spawn) RESOLVE(posix_spawnp) RESOLVE(open) RESOLVE(stat)
  // Also what a vfork child (the exec path's access) or make's SIGINT handler (removing targets) may call.
  RESOLVE(access) RESOLVE(unlink) RESOLVE(remove) RESOLVE(rmdir) RESOLVE(rename)
  __atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
  if (!active) return;
  // What ld.so opened before this ran (strace sees those opens): the program and every library loaded.
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    emit('r', exe);
    // A make, by its name: its comparisons count as seen only if it also speaks them (`g`, below).
    const char *base = strrchr(exe, '/');
    base = base ? base + 1 : exe;
    if (strcmp(base, "make") == 0 || strcmp(base, "gmake") == 0) emit_pid('k');
  }
  dl_iterate_phdr(record_object, NULL);
  dl_iterate_phdr(count_objects, &objects_at_start);
}

__attribute__((constructor)) static void orion_trace_start(void) {
  int e = errno;
  init();
  errno = e;
}

/**
 * Libraries dlopen'ed since start-up, recorded as the process exits normally (dlopen is not wrapped: it resolves names
 * against its caller's RUNPATH and $ORIGIN, which a wrapper would change). One that exits by _exit or exec goes unseen.
 */
__attribute__((destructor)) static void orion_trace_end(void) {
  if (!tracing()) return;
  int e = errno;
  unsigned long long now = 0;
  dl_iterate_phdr(count_objects, &now);
  if (now != objects_at_start) dl_iterate_phdr(record_object, NULL);
  errno = e;
}

// ---- the wrappers ------------------------------------------------------------------------------------------------

/** Runs `after` (it sees the call's errno as e_) when tracing, then puts errno back as the real call left it. */
#define AFTER(...)            \
  do {                        \
    int e_ = errno;           \
    if (tracing()) {          \
      __VA_ARGS__;            \
    }                         \
    errno = e_;               \
  } while (0)

/**
 * A wrapper: `type name params` calls the real function with `args` (parenthesised) — failing with `fail` and ENOSYS
 * when this libc has none — then records what it did with the statement after, which sees the result as r.
 */
#define WRAP(type, name, params, args, fail, ...)                                    \
  EXPORT type name params {                                                          \
    type r = REAL(name) ? REAL(name) args : (errno = ENOSYS, (type)(fail));          \
    AFTER(__VA_ARGS__);                                                              \
    return r;                                                                        \
  }

/** WRAP for a call that replaces or removes the file at (dirfd, path): what it held is recorded first. */
#define WRAP_REPLACING(dirfd, path, type, name, params, args, fail, ...)             \
  EXPORT type name params {                                                          \
    record_replaced(dirfd, path);                                                    \
    type r = REAL(name) ? REAL(name) args : (errno = ENOSYS, (type)(fail));          \
    AFTER(__VA_ARGS__);                                                              \
    return r;                                                                        \
  }

/** open and openat pass their mode argument on only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags)                                                     \
  mode_t mode = 0;                                                           \
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {               \
    va_list ap;                                                              \
    va_start(ap, flags);                                                     \
    mode = (mode_t)va_arg(ap, int);                                          \
    va_end(ap);                                                              \
  }

#define OPEN_WRAPPER(name)                                                    \
  EXPORT int name(const char *path, int flags, ...) {                         \
    OPEN_MODE(flags)                                                          \
    if (flags & O_TRUNC) record_replaced(AT_FDCWD, path);                     \
    int r = CALL(name, -1, path, flags, mode);                                \
    AFTER(record_open(AT_FDCWD, path, flags, r >= 0, e_));                    \
    return r;                                                                 \
  }
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name)                                                  \
  EXPORT int name(int dirfd, const char *path, int flags, ...) {              \
    OPEN_MODE(flags)                                                          \
    if (flags & O_TRUNC) record_replaced(dirfd, path);                        \
    int r = CALL(name, -1, dirfd, path, flags, mode);                         \
    AFTER(record_open(dirfd, path, flags, r >= 0, e_));                       \
    return r;                                                                 \
  }
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

// _FORTIFY_SOURCE's checked opens (never with O_CREAT), creat, the stdio opens.
WRAP(int, __open_2, (const char *path, int flags), (path, flags), -1, record_open(AT_FDCWD, path, flags, r >= 0, e_))
WRAP(int, __open64_2, (const char *path, int flags), (path, flags), -1, record_open(AT_FDCWD, path, flags, r >= 0, e_))
WRAP(int, __openat_2, (int dirfd, const char *path, int flags), (dirfd, path, flags), -1, record_open(dirfd, path, flags, r >= 0, e_))
WRAP(int, __openat64_2, (int dirfd, const char *path, int flags), (dirfd, path, flags), -1, record_open(dirfd, path, flags, r >= 0, e_))
WRAP_REPLACING(AT_FDCWD, path, int, creat, (const char *path, mode_t mode), (path, mode), -1, record_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, r >= 0, e_))
WRAP_REPLACING(AT_FDCWD, path, int, creat64, (const char *path, mode_t mode), (path, mode), -1, record_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, r >= 0, e_))
WRAP_REPLACING(AT_FDCWD, (mode && mode[0] == 'w' ? path : NULL), FILE *, fopen, (const char *path, const char *mode), (path, mode), NULL, record_open(AT_FDCWD, path, fopen_flags(mode), r != NULL, e_))
WRAP_REPLACING(AT_FDCWD, (mode && mode[0] == 'w' ? path : NULL), FILE *, fopen64, (const char *path, const char *mode), (path, mode), NULL, record_open(AT_FDCWD, path, fopen_flags(mode), r != NULL, e_))
WRAP(FILE *, freopen, (const char *path, const char *mode, FILE *f), (path, mode, f), NULL, if (path) record_open(AT_FDCWD, path, fopen_flags(mode), r != NULL, e_))
WRAP(FILE *, freopen64, (const char *path, const char *mode, FILE *f), (path, mode, f), NULL, if (path) record_open(AT_FDCWD, path, fopen_flags(mode), r != NULL, e_))

// Listings.
typedef int (*dirent_filter)(const struct dirent *);
typedef int (*dirent_order)(const struct dirent **, const struct dirent **);
typedef int (*dirent64_filter)(const struct dirent64 *);
typedef int (*dirent64_order)(const struct dirent64 **, const struct dirent64 **);
WRAP(DIR *, opendir, (const char *path), (path), NULL, record_found('l', AT_FDCWD, path, r != NULL, e_))
WRAP(int, scandir, (const char *path, struct dirent ***list, dirent_filter sel, dirent_order cmp), (path, list, sel, cmp), -1, record_found('l', AT_FDCWD, path, r >= 0, e_))
WRAP(int, scandir64, (const char *path, struct dirent64 ***list, dirent64_filter sel, dirent64_order cmp), (path, list, sel, cmp), -1, record_found('l', AT_FDCWD, path, r >= 0, e_))
WRAP(int, scandirat, (int dirfd, const char *path, struct dirent ***list, dirent_filter sel, dirent_order cmp), (dirfd, path, list, sel, cmp), -1, record_found('l', dirfd, path, r >= 0, e_))

// The stat family: what make decides by, so a file only stat'ed is an input too.
#define STAT_RECORD(dirfd) record_found('r', dirfd, path, r == 0, e_)
WRAP(int, stat, (const char *path, struct stat *st), (path, st), -1, STAT_RECORD(AT_FDCWD))
WRAP(int, stat64, (const char *path, struct stat64 *st), (path, st), -1, STAT_RECORD(AT_FDCWD))
WRAP(int, lstat, (const char *path, struct stat *st), (path, st), -1, STAT_RECORD(AT_FDCWD))
WRAP(int, lstat64, (const char *path, struct stat64 *st), (path, st), -1, STAT_RECORD(AT_FDCWD))
WRAP(int, fstatat, (int dirfd, const char *path, struct stat *st, int flags), (dirfd, path, st, flags), -1, STAT_RECORD(dirfd))
WRAP(int, fstatat64, (int dirfd, const char *path, struct stat64 *st, int flags), (dirfd, path, st, flags), -1, STAT_RECORD(dirfd))
WRAP(int, __xstat, (int ver, const char *path, struct stat *st), (ver, path, st), -1, STAT_RECORD(AT_FDCWD))
WRAP(int, __xstat64, (int ver, const char *path, struct stat64 *st), (ver, path, st), -1, STAT_RECORD(AT_FDCWD))
WRAP(int, __lxstat, (int ver, const char *path, struct stat *st), (ver, path, st), -1, STAT_RECORD(AT_FDCWD))
WRAP(int, __lxstat64, (int ver, const char *path, struct stat64 *st), (ver, path, st), -1, STAT_RECORD(AT_FDCWD))
WRAP(int, __fxstatat, (int ver, int dirfd, const char *path, struct stat *st, int flags), (ver, dirfd, path, st, flags), -1, STAT_RECORD(dirfd))
WRAP(int, __fxstatat64, (int ver, int dirfd, const char *path, struct stat64 *st, int flags), (ver, dirfd, path, st, flags), -1, STAT_RECORD(dirfd))
WRAP(int, statx, (int dirfd, const char *path, int flags, unsigned int mask, struct statx *st), (dirfd, path, flags, mask, st), -1, STAT_RECORD(dirfd))

// Access checks: the name's existence matters, not its content.
WRAP(int, access, (const char *path, int mode), (path, mode), -1, record_found('p', AT_FDCWD, path, r == 0, e_))
WRAP(int, faccessat, (int dirfd, const char *path, int mode, int flags), (dirfd, path, mode, flags), -1, record_found('p', dirfd, path, r == 0, e_))
WRAP(int, eaccess, (const char *path, int mode), (path, mode), -1, record_found('p', AT_FDCWD, path, r == 0, e_))
WRAP(int, euidaccess, (const char *path, int mode), (path, mode), -1, record_found('p', AT_FDCWD, path, r == 0, e_))

// Changed in place: what the file was before is part of the result.
WRAP(int, truncate, (const char *path, off_t len), (path, len), -1, if (r == 0) record('w', AT_FDCWD, path))
WRAP(int, truncate64, (const char *path, off64_t len), (path, len), -1, if (r == 0) record('w', AT_FDCWD, path))
WRAP(int, chmod, (const char *path, mode_t mode), (path, mode), -1, if (r == 0) record('w', AT_FDCWD, path))
WRAP(int, lchmod, (const char *path, mode_t mode), (path, mode), -1, if (r == 0) record('w', AT_FDCWD, path))
WRAP(int, fchmodat, (int dirfd, const char *path, mode_t mode, int flags), (dirfd, path, mode, flags), -1, if (r == 0) record('w', dirfd, path))

// Removals, moves, links, directories.
WRAP_REPLACING(AT_FDCWD, path, int, unlink, (const char *path), (path), -1, if (r == 0) record('d', AT_FDCWD, path))
WRAP(int, rmdir, (const char *path), (path), -1, if (r == 0) record('d', AT_FDCWD, path))
WRAP_REPLACING(AT_FDCWD, path, int, remove, (const char *path), (path), -1, if (r == 0) record('d', AT_FDCWD, path))
WRAP_REPLACING(dirfd, path, int, unlinkat, (int dirfd, const char *path, int flags), (dirfd, path, flags), -1, if (r == 0) record('d', dirfd, path))
WRAP_REPLACING(AT_FDCWD, to, int, rename, (const char *from, const char *to), (from, to), -1, if (r == 0) record_move(AT_FDCWD, from, AT_FDCWD, to, 0))
WRAP_REPLACING(tofd, to, int, renameat, (int fromfd, const char *from, int tofd, const char *to), (fromfd, from, tofd, to), -1, if (r == 0) record_move(fromfd, from, tofd, to, 0))
WRAP_REPLACING(tofd, to, int, renameat2, (int fromfd, const char *from, int tofd, const char *to, unsigned int flags), (fromfd, from, tofd, to, flags), -1, if (r == 0) record_move(fromfd, from, tofd, to, 0))
WRAP(int, link, (const char *from, const char *to), (from, to), -1, if (r == 0) record_move(AT_FDCWD, from, AT_FDCWD, to, 1))
WRAP(int, linkat, (int fromfd, const char *from, int tofd, const char *to, int flags), (fromfd, from, tofd, to, flags), -1, if (r == 0) record_move(fromfd, from, tofd, to, 1))
WRAP(int, mkdir, (const char *path, mode_t mode), (path, mode), -1, record_mkdir(AT_FDCWD, path, r == 0, e_))
WRAP(int, mkdirat, (int dirfd, const char *path, mode_t mode), (dirfd, path, mode), -1, record_mkdir(dirfd, path, r == 0, e_))

/** A symlink replaces whatever was at its name (as ln -sf's rename over it does). */
static void record_symlink(int dirfd, const char *path) {
  char abs[ABS_MAX];
  if (place(dirfd, path, abs) != PLACED) return;
  emit('d', abs);
  emit('m', abs);
}
WRAP(int, symlink, (const char *target, const char *path), (target, path), -1, if (r == 0) record_symlink(AT_FDCWD, path))
WRAP(int, symlinkat, (const char *target, int dirfd, const char *path), (target, dirfd, path), -1, if (r == 0) record_symlink(dirfd, path))

// Temporary files made under a template: the name made is a fresh write (mkdtemp: a directory made).
#define MADE_NAME if (r >= 0) record('f', AT_FDCWD, tmpl)
WRAP(int, mkstemp, (char *tmpl), (tmpl), -1, MADE_NAME)
WRAP(int, mkstemp64, (char *tmpl), (tmpl), -1, MADE_NAME)
WRAP(int, mkostemp, (char *tmpl, int flags), (tmpl, flags), -1, MADE_NAME)
WRAP(int, mkostemp64, (char *tmpl, int flags), (tmpl, flags), -1, MADE_NAME)
WRAP(int, mkstemps, (char *tmpl, int suffix), (tmpl, suffix), -1, MADE_NAME)
WRAP(int, mkstemps64, (char *tmpl, int suffix), (tmpl, suffix), -1, MADE_NAME)
WRAP(int, mkostemps, (char *tmpl, int suffix, int flags), (tmpl, suffix, flags), -1, MADE_NAME)
WRAP(int, mkostemps64, (char *tmpl, int suffix, int flags), (tmpl, suffix, flags), -1, MADE_NAME)
WRAP(char *, mkdtemp, (char *tmpl), (tmpl), NULL, if (r) record('m', AT_FDCWD, r))

// ---- running programs --------------------------------------------------------------------------------------------

EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  if (!tracing()) return CALL(execve, -1, path, argv, envp);
  return traced_execve(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  if (!tracing()) return CALL(execvpe, -1, file, argv, envp);
  return traced_execvpe(file, argv, envp);
}

EXPORT int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

/** The arguments of an execl-style call after `first`, up to its NULL, as an argv on the stack (then `envp` for execle). */
#define VA_ARGV(name, first, last, envp_out)                                  \
  size_t name##_n = 1;                                                        \
  va_list name##_ap;                                                          \
  va_start(name##_ap, last);                                                  \
  while (va_arg(name##_ap, char *)) name##_n++;                               \
  va_end(name##_ap);                                                          \
  char *name[name##_n + 1];                                                   \
  name[0] = (char *)(first);                                                  \
  va_start(name##_ap, last);                                                  \
  for (size_t i_ = 1; i_ <= name##_n; i_++) name[i_] = va_arg(name##_ap, char *); \
  envp_out;                                                                   \
  va_end(name##_ap)

EXPORT int execl(const char *path, const char *arg, ...) {
  VA_ARGV(argv, arg, arg, (void)0);
  return execve(path, argv, environ);
}

EXPORT int execlp(const char *file, const char *arg, ...) {
  VA_ARGV(argv, arg, arg, (void)0);
  return execvpe(file, argv, environ);
}

EXPORT int execle(const char *path, const char *arg, ...) {
  char *const *envp;
  VA_ARGV(argv, arg, arg, envp = va_arg(argv_ap, char *const *));
  return execve(path, argv, envp);
}

EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags) {
  if (!tracing()) return CALL(execveat, -1, dirfd, path, argv, envp, flags);
  char abs[ABS_MAX];
  int placed = place(dirfd, path, abs);
  if (placed == SKIP) {
    // AT_EMPTY_PATH: the fd itself is the program.
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(link, abs, PATH_MAX - 1);
    if (n > 0 && abs[0] == '/') {
      abs[n] = 0;
      placed = strstr(abs, " (deleted)") ? UNPLACED : PLACED;
    }
    if (placed != PLACED) emit('u', "a program run from an fd that names no file");
  }
  if (placed == PLACED) record_program(abs);
  TRACED_ENV(env, envp);
  return CALL(execveat, -1, dirfd, path, argv, env, flags);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
  return execveat(fd, "", argv, envp, AT_EMPTY_PATH);
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  if (!tracing()) return CALL(posix_spawn, ENOSYS, pid, path, actions, attr, argv, envp);
  int e = errno;
  char abs[ABS_MAX];
  if (place(AT_FDCWD, path, abs) == PLACED) record_program(abs);
  errno = e;
  TRACED_ENV(env, envp);
  return CALL(posix_spawn, ENOSYS, pid, path, actions, attr, argv, env);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  if (!tracing()) return CALL(posix_spawnp, ENOSYS, pid, file, actions, attr, argv, envp);
  int e = errno;
  if (*file) record_path_search(file);
  errno = e;
  TRACED_ENV(env, envp);
  return CALL(posix_spawnp, ENOSYS, pid, file, actions, attr, argv, env);
}

// A spawned child's own opens and working directory (file actions) are made inside glibc: recorded as they are asked.
EXPORT int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *actions, int fd, const char *path, int flags, mode_t mode) {
  int r = CALL(posix_spawn_file_actions_addopen, ENOSYS, actions, fd, path, flags, mode);
  if (r == 0 && tracing()) {
    int e = errno;
    struct stat st;
    // The open happens in the child: whether the name is there now stands for whether it will be then.
    int there = (flags & O_CREAT) || CALL(stat, -1, path, &st) == 0;
    record_open(AT_FDCWD, path, flags, there, there ? 0 : errno);
    errno = e;
  }
  return r;
}

EXPORT int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path) {
  if (tracing()) emit_why("a spawned child given a working directory of its own", path);
  return CALL(posix_spawn_file_actions_addchdir_np, ENOSYS, actions, path);
}

EXPORT int posix_spawn_file_actions_addfchdir_np(posix_spawn_file_actions_t *actions, int fd) {
  if (tracing()) emit('u', "a spawned child given a working directory of its own");
  return CALL(posix_spawn_file_actions_addfchdir_np, ENOSYS, actions, fd);
}

// system and popen start /bin/sh inside glibc, with the process's environment as it is now.
EXPORT int system(const char *command) {
  if (tracing()) keep_tracer_in_environ();
  return CALL(system, -1, command);
}

EXPORT FILE *popen(const char *command, const char *type) {
  if (tracing()) keep_tracer_in_environ();
  return CALL(popen, NULL, command, type);
}

// ---- walks inside glibc ------------------------------------------------------------------------------------------

/**
 * What glob(3) reads, when the pattern is simple enough to say: without magic, the one name it looks up; with magic in
 * its last component only, the directory it lists (and, with GLOB_MARK or GLOB_ONLYDIR, each match it stats). Anything
 * else is untraceable. With GLOB_ALTDIRFUNC the caller's own functions (make's) do the reading, through the wrappers.
 */
static void record_glob(const char *pattern, int flags, size_t matches, char **paths) {
  if (flags & GLOB_ALTDIRFUNC) return;
  if (((flags & GLOB_BRACE) && strchr(pattern, '{')) || ((flags & (GLOB_TILDE | GLOB_TILDE_CHECK)) && pattern[0] == '~')) {
    emit_why("glob with braces or a tilde", pattern);
    return;
  }
  const char *magic = (flags & GLOB_NOESCAPE) ? "*?[" : "*?[\\";
  const char *slash = strrchr(pattern, '/');
  size_t first = strcspn(pattern, magic);
  if (slash && first < (size_t)(slash - pattern)) {
    emit_why("glob with a pattern in a directory part", pattern);
    return;
  }
  char abs[ABS_MAX];
  struct stat st;
  if (!pattern[first]) {
    if (place(AT_FDCWD, pattern, abs) != PLACED) return;
    int ok = CALL(lstat, -1, abs, &st) == 0;
    record_found('r', AT_FDCWD, abs, ok, ok ? 0 : errno);
    return;
  }
  char dir[ABS_MAX];
  size_t n = slash ? (size_t)(slash - pattern) : 0;
  if (n >= sizeof dir) {
    emit('u', "a path longer than the tracer's buffer");
    return;
  }
  if (slash && n == 0) strcpy(dir, "/");
  else if (!slash) strcpy(dir, ".");
  else {
    memcpy(dir, pattern, n);
    dir[n] = 0;
  }
  if (place(AT_FDCWD, dir, abs) != PLACED) return;
  int ok = CALL(stat, -1, abs, &st) == 0 && S_ISDIR(st.st_mode);
  record_found('l', AT_FDCWD, abs, ok, ok ? 0 : errno);
  if (flags & (GLOB_MARK | GLOB_ONLYDIR))
    for (size_t i = 0; i < matches; i++) record('r', AT_FDCWD, paths[i]);
}

#define GLOB_WRAPPER(name, type)                                                                        \
  EXPORT int name(const char *pattern, int flags, int (*errfunc)(const char *, int), type *pglob) {     \
    size_t before = (flags & GLOB_APPEND) ? pglob->gl_pathc : 0;                                        \
    int r = CALL(name, GLOB_ABORTED, pattern, flags, errfunc, pglob);                                   \
    AFTER(if (pattern && (r == 0 || r == GLOB_NOMATCH))                                                 \
              record_glob(pattern, flags, r == 0 ? pglob->gl_pathc - before : 0,                        \
                          r == 0 ? pglob->gl_pathv + pglob->gl_offs + before : NULL));                 \
    return r;                                                                                           \
  }
GLOB_WRAPPER(glob, glob_t)
GLOB_WRAPPER(glob64, glob64_t)

#define WALK_WRAPPER(name, fn_type, extra_params, extra_args)                          \
  EXPORT int name(const char *dir, fn_type fn, int depth extra_params) {               \
    if (tracing()) emit_why("a tree walked inside glibc (" #name ")", dir);             \
    return CALL(name, -1, dir, fn, depth extra_args);                                  \
  }
WALK_WRAPPER(ftw, __ftw_func_t, , )
WALK_WRAPPER(ftw64, __ftw64_func_t, , )
WALK_WRAPPER(nftw, __nftw_func_t, COMMA int flags, COMMA flags)
WALK_WRAPPER(nftw64, __nftw64_func_t, COMMA int flags, COMMA flags)

EXPORT FTS *fts_open(char *const *paths, int options, int (*cmp)(const FTSENT **, const FTSENT **)) {
  if (tracing()) emit('u', "a tree walked inside glibc (fts_open)");
  return CALL(fts_open, NULL, paths, options, cmp);
}

EXPORT FTS64 *fts64_open(char *const *paths, int options, int (*cmp)(const FTSENT64 **, const FTSENT64 **)) {
  if (tracing()) emit('u', "a tree walked inside glibc (fts64_open)");
  return CALL(fts64_open, NULL, paths, options, cmp);
}

// ---- direct system calls -----------------------------------------------------------------------------------------

/**
 * syscall(2) itself: Rust's standard library and others call statx and openat2 through it. The file calls are recorded
 * like their wrappers'; the arguments of any call are passed on as six longs, as glibc's own syscall() reads them.
 */
EXPORT long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  if (number == SYS_renameat2) record_replaced((int)a[2], (const char *)a[3]);
  if (number == SYS_openat && ((int)a[2] & O_TRUNC)) record_replaced((int)a[0], (const char *)a[1]);
  long r = CALL(syscall, -1, number, a[0], a[1], a[2], a[3], a[4], a[5]);
  switch (number) {
  case SYS_statx:
  case SYS_newfstatat:
    AFTER(record_found('r', (int)a[0], (const char *)a[1], r == 0, e_));
    break;
  case SYS_faccessat:
  case SYS_faccessat2:
    AFTER(record_found('p', (int)a[0], (const char *)a[1], r == 0, e_));
    break;
  case SYS_openat:
    AFTER(record_open((int)a[0], (const char *)a[1], (int)a[2], r >= 0, e_));
    break;
  case SYS_openat2:
    // Its flags are the first field of struct open_how.
    if (a[2]) AFTER(record_open((int)a[0], (const char *)a[1], (int)*(const unsigned long long *)a[2], r >= 0, e_));
    break;
  case SYS_renameat2:
    AFTER(if (r == 0) record_move((int)a[0], (const char *)a[1], (int)a[2], (const char *)a[3], 0));
    break;
  default:
    break;
  }
  return r;
}

// ---- make's comparisons ------------------------------------------------------------------------------------------
//
// make decides by "newer than", between a target and each of its prerequisites; no system call shows which pairs it
// compared. Orion starts GNU make with --debug=v and ORION_TRACE_MAKE_DEBUG=1, and here, in each GNU make process
// (known by the version banner that flag prints first), every printf is that debug output: none of it reaches the
// terminal (nor its puts, which a compiler makes of a printf of a plain line; make's own messages and the recipes'
// output go through fputs and write, untouched), and its lines
// "Prerequisite 'P' is newer|older than target 'T'." become `c` records. Their format strings are recognised in
// English and as gettext translated them for this process.

static const char MAKE_BANNER[] = "%sGNU Make %s\n";
static const char MAKE_NEWER[] = "Prerequisite '%s' is newer than target '%s'.\n";
static const char MAKE_OLDER[] = "Prerequisite '%s' is older than target '%s'.\n";
/** Also spoken: a prerequisite missing (make may then compare what it would be made from, unprinted). */
static const char MAKE_MISSING[] = "Prerequisite '%s' of target '%s' does not exist.\n";
/** This process is a GNU make speaking its debug output (set by its banner). */
static int is_make;
/** The two messages as this make's gettext gave them (translated, or the msgid itself). */
static const char *make_newer_fmt, *make_older_fmt, *make_missing_fmt;

static const char *note_make_format(const char *msgid, const char *r) {
  if (make_debug && msgid && r) {
    if (strcmp(msgid, MAKE_NEWER) == 0) make_newer_fmt = r;
    else if (strcmp(msgid, MAKE_OLDER) == 0) make_older_fmt = r;
    else if (strcmp(msgid, MAKE_MISSING) == 0) make_missing_fmt = r;
  }
  return r;
}

EXPORT char *dcgettext(const char *domain, const char *msgid, int category) {
  return (char *)note_make_format(msgid, CALL(dcgettext, (char *)msgid, domain, msgid, category));
}

EXPORT char *gettext(const char *msgid) { return (char *)note_make_format(msgid, CALL(gettext, (char *)msgid, msgid)); }

/** One comparison (`n`/`o`) or missing prerequisite (`m`), both paths placed against this make's working directory. */
static void record_compared(char kind, const char *prerequisite, const char *target) {
  char p[ABS_MAX], t[ABS_MAX];
  if (place(AT_FDCWD, prerequisite, p) != PLACED || place(AT_FDCWD, target, t) != PLACED) return emit('c', "?");
  if (strchr(p, '\t') || strchr(t, '\t')) return emit('c', "?");
  char line[2 * ABS_MAX + 8];
  snprintf(line, sizeof line, "%c\t%s\t%s", kind, p, t);
  emit('c', line);
}

/**
 * Whether this make was asked for output that also starts with its banner (`make --version`, `-p`, `-v` run by a
 * recipe, MAKEFLAGS passing --debug=v on): that output is the user's, so this make is not spoken for (no `g`: its
 * comparisons count as unseen).
 */
static int make_asked_to_print(void) {
  char args[8192];
  int fd = CALL(open, -1, "/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;
  ssize_t n = read(fd, args, sizeof args - 1);
  close(fd);
  if (n <= 0) return 1;
  args[n] = 0;
  for (char *a = args + strlen(args) + 1; a < args + n; a += strlen(a) + 1) {
    if (strcmp(a, "--") == 0) break;
    if (strcmp(a, "--debug=v") == 0) continue;  // Orion's own
    if (strncmp(a, "--v", 3) == 0 || strncmp(a, "--h", 3) == 0 || strncmp(a, "--print-da", 10) == 0 || strncmp(a, "--deb", 5) == 0) return 1;
    if (a[0] == '-' && a[1] != '-') {
      // A cluster of short options, up to the first that takes a value (-Cdir, -fFILE, -j4...).
      for (const char *c = a + 1; *c && !strchr("CfIjloWOE", *c); c++)
        if (strchr("pvhd", *c)) return 1;
    }
  }
  // -p and -d also come down through MAKEFLAGS (its first word holds the one-letter flags).
  const char *flags = getenv("MAKEFLAGS");
  if (flags) {
    if (*flags && *flags != '-' && *flags != ' ') {
      for (const char *c = flags; *c && *c != ' '; c++)
        if (*c == 'p' || *c == 'd') return 1;
    }
    if (strstr(flags, "--print-data-base") || strstr(flags, "--debug=a") || strstr(flags, "--debug ")) return 1;
  }
  return 0;
}

/** GNU make 4.1 or later: the versions whose debug output and messages this was checked against. */
static int known_make_version(const char *version) {
  if (!version) return 0;
  char *end;
  long major = strtol(version, &end, 10);
  if (end == version) return 0;
  long minor = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
  return major > 4 || (major == 4 && minor >= 1);
}

/** 1 when `fmt` is make's debug output (recorded or dropped here), 0 when it is any other program's printf. */
static int make_debug_printf(const char *fmt, va_list ap) {
  if (!make_debug || !fmt) return 0;
  if (!is_make) {
    if (strcmp(fmt, MAKE_BANNER) != 0) return 0;
    va_list copy;
    va_copy(copy, ap);
    (void)va_arg(copy, const char *);
    const char *version = va_arg(copy, const char *);
    va_end(copy);
    if (!known_make_version(version) || make_asked_to_print()) return 0;
    is_make = 1;
    emit_pid('g');
    return 1;
  }
  char kind = 0;
  if (fmt == make_newer_fmt || strcmp(fmt, MAKE_NEWER) == 0) kind = 'n';
  else if (fmt == make_older_fmt || strcmp(fmt, MAKE_OLDER) == 0) kind = 'o';
  else if (fmt == make_missing_fmt || strcmp(fmt, MAKE_MISSING) == 0) kind = 'm';
  if (kind) {
    va_list copy;
    va_copy(copy, ap);
    const char *prerequisite = va_arg(copy, const char *);
    const char *target = va_arg(copy, const char *);
    va_end(copy);
    int e = errno;
    if (tracing()) record_compared(kind, prerequisite, target);
    errno = e;
  }
  return 1;
}

EXPORT int printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = make_debug_printf(fmt, ap) ? 0 : CALL(vprintf, -1, fmt, ap);
  va_end(ap);
  return r;
}

EXPORT int __printf_chk(int flag, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = make_debug_printf(fmt, ap) ? 0 : CALL(__vprintf_chk, -1, flag, fmt, ap);
  va_end(ap);
  return r;
}

/** make indents its debug lines with putc(' ', stdout); a compiler turns printf("...\n") into puts("..."). */
EXPORT int putc(int c, FILE *f) {
  if (is_make && c == ' ' && f == stdout) return c;
  return CALL(putc, EOF, c, f);
}

EXPORT int puts(const char *s) { return is_make ? 1 : CALL(puts, EOF, s); }

/** The same indentation where putchar is called, or glibc < 2.28's inline putchar reaches _IO_putc. */
EXPORT int putchar(int c) {
  if (is_make && c == ' ') return c;
  return CALL(putchar, EOF, c);
}

EXPORT int _IO_putc(int c, FILE *f) {
  if (is_make && c == ' ' && f == stdout) return c;
  return CALL(_IO_putc, EOF, c, f);
}
