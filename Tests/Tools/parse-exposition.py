#!/usr/bin/python3
"""Parses Prometheus text exposition with prometheus_client's own parser (Debian's
python3-prometheus-client) and prints what it understood as JSON, so ctdoctor's tests
check the file the way a scraper reads it, not the way ctdoctor meant it.

Usage: parse-exposition.py FILE   (exit 1 with the parser's message when it refuses)
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as handle:
        text = handle.read()
    families = []
    try:
        for family in text_string_to_metric_families(text):
            families.append({
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples],
            })
    except Exception as error:  # the parser raises ValueError and friends on bad input
        print(f"unparsable exposition: {error}", file=sys.stderr)
        return 1
    json.dump(families, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
