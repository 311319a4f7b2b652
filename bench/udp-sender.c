/*
 * Paced UDP sender for bench/ingest.bench.ts (compiled by it with `cc -O2`).
 *
 *   udp-sender HOST PORT FLOWS_PER_SEC SECONDS FILE
 *
 * FILE holds the datagrams of one loop: repeated [u16 exporter index][u16 flows][u32 length][payload]
 * (little endian). Exporter i sends from its own socket bound to HOST:(40000 + i), so the kernel's
 * SO_REUSEPORT hash spreads exporters over the collector's workers. The loop is replayed in order until
 * SECONDS have passed, paced in 1 ms slices (clock_nanosleep between slices, no busy wait) so that the
 * flows sent follow FLOWS_PER_SEC; 0 sends as fast as possible. Prints one JSON line:
 * {"packets":N,"flows":N,"seconds":S,"cpu":S}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int exporter;
  int flows;
  int len;
  unsigned char *data;
} dgram;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: udp-sender HOST PORT FLOWS_PER_SEC SECONDS FILE\n");
    return 2;
  }
  const char *host = argv[1];
  int port = atoi(argv[2]);
  double rate = atof(argv[3]);
  double seconds = atof(argv[4]);
  FILE *f = fopen(argv[5], "rb");
  if (!f) {
    perror("open");
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(size);
  if (fread(buf, 1, size, f) != (size_t)size) {
    perror("read");
    return 1;
  }
  fclose(f);
  int n = 0, cap = 1024, exporters = 0;
  dgram *d = malloc(sizeof(dgram) * cap);
  for (long o = 0; o + 8 <= size;) {
    if (n == cap) d = realloc(d, sizeof(dgram) * (cap *= 2));
    d[n].exporter = buf[o] | buf[o + 1] << 8;
    d[n].flows = buf[o + 2] | buf[o + 3] << 8;
    d[n].len = buf[o + 4] | buf[o + 5] << 8 | buf[o + 6] << 16 | buf[o + 7] << 24;
    d[n].data = buf + o + 8;
    if (d[n].exporter + 1 > exporters) exporters = d[n].exporter + 1;
    o += 8 + d[n].len;
    n++;
  }
  int v6 = strchr(host, ':') != NULL;
  struct sockaddr_storage dst;
  socklen_t dlen;
  memset(&dst, 0, sizeof dst);
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&dst;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, host, &a->sin6_addr);
    dlen = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&dst;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, host, &a->sin_addr);
    dlen = sizeof *a;
  }
  int *socks = malloc(sizeof(int) * exporters);
  for (int e = 0; e < exporters; e++) {
    socks[e] = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    setsockopt(socks[e], SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage src = dst;
    if (v6)
      ((struct sockaddr_in6 *)&src)->sin6_port = htons(40000 + e);
    else
      ((struct sockaddr_in *)&src)->sin_port = htons(40000 + e);
    if (bind(socks[e], (struct sockaddr *)&src, dlen) != 0) {
      perror("bind");
      return 1;
    }
  }
  double start = now();
  double sent_flows = 0;
  long packets = 0, errors = 0;
  int i = 0;
  for (;;) {
    double el = now() - start;
    if (el >= seconds) break;
    double due = rate > 0 ? rate * (el + 0.001) : sent_flows + 100000;
    if (due > rate * seconds && rate > 0) due = rate * seconds;
    while (sent_flows < due) {
      dgram *g = &d[i];
      if (sendto(socks[g->exporter], g->data, g->len, 0, (struct sockaddr *)&dst, dlen) < 0) errors++;
      else {
        sent_flows += g->flows;
        packets++;
      }
      if (++i == n) i = 0;
    }
    if (rate > 0) {
      struct timespec ts = {0, 1000000};
      clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    }
  }
  double secs = now() - start;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("{\"packets\":%ld,\"flows\":%.0f,\"seconds\":%.6f,\"cpu\":%.3f,\"errors\":%ld}\n", packets, sent_flows,
         secs, cpu, errors);
  return 0;
}
