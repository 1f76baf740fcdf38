"""Reads Prometheus text on stdin, parses it with the prometheus_client
parser (Debian's python3-prometheus-client), and prints every sample as
`NAME{LABELS} VALUE`, labels sorted, one per line. Exit 1 if the text does
not parse. Used by tests/test_supervisor_ops.c."""
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    for family in text_string_to_metric_families(sys.stdin.read()):
        for sample in family.samples:
            labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(sample.labels.items()))
            print("%s{%s} %r" % (sample.name, labels, float(sample.value)))
except Exception as error:  # the parser raises ValueError and friends
    print("parse error: %s" % error)
    sys.exit(1)
