/*
 * A librdkafka mock Kafka cluster for the Kafka sink's tests (test/helpers/kafka.ts builds it with cc and
 * -lrdkafka; Debian package librdkafka-dev). Prints "BOOTSTRAP host:port,..." on stdout once the cluster
 * runs, then executes one command per stdin line and answers "ok" (or "error <text>") per command:
 *   topic NAME PARTITIONS REPLICAS   create a topic
 *   down ID | up ID                  take broker ID (1..N) down / bring it back
 *   rtt ID MS                        add MS of round-trip time to broker ID
 *   leader TOPIC PARTITION ID        move a partition's leader
 *   errors APIKEY ERR [ERR...]       the next requests of API APIKEY (0 = Produce) fail with these codes
 *   topicerr TOPIC ERR               every request for TOPIC fails with ERR (0 clears)
 *   clear APIKEY                     drop queued request errors
 *   quit                             (or end of input) destroy the cluster and exit
 * Usage: kafka-mock [BROKERS]   (default 3)
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  int brokers = argc > 1 ? atoi(argv[1]) : 3;
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mc) {
    fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
    return 1;
  }
  printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);
  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[32] = "", a[256] = "";
    int n1 = 0, n2 = 0, n3 = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (sscanf(line, "%31s", cmd) != 1) continue;
    if (!strcmp(cmd, "quit")) break;
    if (!strcmp(cmd, "topic") && sscanf(line, "%*s %255s %d %d", a, &n1, &n2) == 3) {
      err = rd_kafka_mock_topic_create(mc, a, n1, n2);
    } else if (!strcmp(cmd, "down") && sscanf(line, "%*s %d", &n1) == 1) {
      err = rd_kafka_mock_broker_set_down(mc, n1);
    } else if (!strcmp(cmd, "up") && sscanf(line, "%*s %d", &n1) == 1) {
      err = rd_kafka_mock_broker_set_up(mc, n1);
    } else if (!strcmp(cmd, "rtt") && sscanf(line, "%*s %d %d", &n1, &n2) == 2) {
      err = rd_kafka_mock_broker_set_rtt(mc, n1, n2);
    } else if (!strcmp(cmd, "leader") && sscanf(line, "%*s %255s %d %d", a, &n1, &n2) == 3) {
      err = rd_kafka_mock_partition_set_leader(mc, a, n1, n2);
    } else if (!strcmp(cmd, "errors")) {
      rd_kafka_resp_err_t errs[64];
      int count = 0, off = 0, v = 0, used = 0;
      const char *p = line;
      sscanf(p, "%*s %d%n", &n1, &off);
      p += off;
      while (count < 64 && sscanf(p, "%d%n", &v, &used) == 1) {
        errs[count++] = (rd_kafka_resp_err_t)v;
        p += used;
      }
      rd_kafka_mock_push_request_errors_array(mc, (int16_t)n1, (size_t)count, errs);
    } else if (!strcmp(cmd, "topicerr") && sscanf(line, "%*s %255s %d", a, &n1) == 2) {
      rd_kafka_mock_topic_set_error(mc, a, (rd_kafka_resp_err_t)n1);
    } else if (!strcmp(cmd, "clear") && sscanf(line, "%*s %d", &n1) == 1) {
      rd_kafka_mock_clear_request_errors(mc, (int16_t)n1);
    } else {
      printf("error unknown command\n");
      fflush(stdout);
      continue;
    }
    (void)n3;
    if (err) printf("error %s\n", rd_kafka_err2str(err));
    else printf("ok\n");
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
