/* agent-wire: the client half of the agent's wire format (src/agent/protocol.ts is the reference), shared by the native clients orion-cc, orion-sh and orion-build. */
#ifndef ORION_AGENT_WIRE_H
#define ORION_AGENT_WIRE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every integer is a little-endian u32 unless noted. Each message is a frame: u32 payload length, then the payload.
 * One request and one reply per connection, except a build's request ("orion-build"), answered by a stream of frames.
 *   request:  u32 version (1), u32 argc, u32 envc, then NUL-terminated argv[0..argc), cwd, env[0..envc)
 *   reply:    u8 status, i32 exit code, u32 n, n stdout bytes, u32 m, m stderr bytes
 * status 0 DONE (print the bytes, exit with the code), 1 FALLBACK (run the call yourself), 2 REWRITE (the stdout
 * bytes are a command string to run in the caller's shell instead; orion-sh only).
 */
#define AGENT_PROTOCOL_VERSION 1u
#define AGENT_MAX_FRAME (64u << 20)
#define AGENT_STATUS_DONE 0
#define AGENT_STATUS_FALLBACK 1
#define AGENT_STATUS_REWRITE 2

/* A decoded reply; out and err point into buf, which the caller may free(). */
struct agent_reply {
  unsigned char *buf;
  uint8_t status;
  int32_t code;
  const unsigned char *out;
  uint32_t out_len;
  const unsigned char *err;
  uint32_t err_len;
};

/* Length of dir without trailing slashes (as src/agent/socket-path.ts trims them). */
size_t agent_trimmed_len(const char *dir, size_t len);

/* A little-endian u32 from p. */
uint32_t agent_get_u32(const unsigned char *p);

/* An exit status for a code the agent sent: 0-255 as they are, anything else 1. */
int agent_exit_status(int32_t code);

/* The variable's value when it is set and non-empty, else NULL. */
const char *agent_env_set(const char *name);

/* sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
#define AGENT_MAX_SOCKET_PATH 107

/*
 * The agent's socket path (src/agent/socket-path.ts is the reference): $ORION_AGENT_SOCKET, else
 * <dir>/orion-agent-<uid>.sock with dir = $XDG_RUNTIME_DIR, $ORION_CACHE_DIR, $XDG_CACHE_HOME/orion or ~/.cache/orion,
 * else /tmp/orion-<uid>/orion-agent-<uid>.sock when that is too long. 1 on success, 0 when it does not fit `size`.
 */
int agent_socket_path(char *out, size_t size);

/* A connected unix socket (close-on-exec), or -1 with errno set. */
int agent_connect(const char *path);

/* Writes all of buf, retrying on EINTR; 0 on success, -1 on error. */
int agent_write_all(int fd, const void *buf, size_t len);

/* Sends one request: argv[0..argc), this process's cwd and environ. 0 on success; never raises SIGPIPE. */
int agent_send_request(int fd, int argc, char *const *argv);

/* Reads and checks one whole reply frame; 0 on success (r->buf then needs free()), -1 on any short or malformed reply. */
int agent_read_reply(int fd, struct agent_reply *r);

/* Reads one frame: *payload (malloc'd, the caller frees it) of *len bytes. 0 on success, -1 on EOF or a bad frame. */
int agent_read_frame(int fd, unsigned char **payload, uint32_t *len);

/* A build's answer stream (argv[0] "orion-build"): frames whose payload is u8 kind, then its bytes. */
#define AGENT_BUILD_EXIT 0
#define AGENT_BUILD_STDOUT 1
#define AGENT_BUILD_STDERR 2
#define AGENT_BUILD_NOT_SERVED 3

#endif
