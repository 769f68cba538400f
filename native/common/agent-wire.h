/* agent-wire: the client half of the agent's wire format (src/agent/protocol.ts is the reference), shared by the native clients orion-cc and orion-sh. */
#ifndef ORION_AGENT_WIRE_H
#define ORION_AGENT_WIRE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every integer is a little-endian u32 unless noted. Each message is a frame: u32 payload length, then the payload.
 * One request and one reply per connection.
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

/* The variable's value when it is set and non-empty, else NULL. */
const char *agent_env_set(const char *name);

/* A connected unix socket (close-on-exec), or -1 with errno set. */
int agent_connect(const char *path);

/* Writes all of buf, retrying on EINTR; 0 on success, -1 on error. */
int agent_write_all(int fd, const void *buf, size_t len);

/* Sends one request: argv[0..argc), this process's cwd and environ. 0 on success; never raises SIGPIPE. */
int agent_send_request(int fd, int argc, char *const *argv);

/* Reads and checks one whole reply frame; 0 on success (r->buf then needs free()), -1 on any short or malformed reply. */
int agent_read_reply(int fd, struct agent_reply *r);

#endif
