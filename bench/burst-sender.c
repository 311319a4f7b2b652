/*
 * Back-to-back UDP burst for bench/burst.bench.ts (compiled by it with `cc -O2`).
 *
 *   burst-sender HOST PORT FILE
 *
 * FILE holds datagrams as [u32 length, little endian][payload]...; each is sent once, in order, from one
 * socket (one exporter), with no pause between them. Prints {"packets":N,"seconds":S,"errors":N}.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: burst-sender HOST PORT FILE\n");
    return 2;
  }
  FILE *f = fopen(argv[3], "rb");
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
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_port = htons(atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &dst.sin_addr);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long packets = 0, errors = 0;
  for (long o = 0; o + 4 <= size;) {
    int len = buf[o] | buf[o + 1] << 8 | buf[o + 2] << 16 | buf[o + 3] << 24;
    if (sendto(s, buf + o + 4, len, 0, (struct sockaddr *)&dst, sizeof dst) < 0) errors++;
    else packets++;
    o += 4 + len;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("{\"packets\":%ld,\"seconds\":%.6f,\"errors\":%ld}\n", packets,
         (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, errors);
  return 0;
}
