#!/usr/bin/env python3
"""Creates or updates the Datadog monitors of one stage (ops/datadog/monitors.json).

    python3 ops/datadog/apply_monitors.py --stage prod --stack offers-prod --dry-run
    DD_API_KEY=... DD_APP_KEY=... DD_SITE=datadoghq.eu \\
        python3 ops/datadog/apply_monitors.py --stage prod --stack offers-prod

Placeholders: STAGE (--stage); DISPATCHER_FUNCTION and FAILURE_QUEUE (the
dispatcher's function name and its on-failure queue's name), STATS_FUNCTION,
STATS_FAILURE_QUEUE, PROGRESS_FUNCTION, PROGRESS_FAILURE_QUEUE, VISITS_FUNCTION,
VISITS_FAILURE_QUEUE (the same for campaign statistics, challenge progress and
user visits: from the stack with
--stack, through the AWS CLI, or from those environment variables);
ITERATOR_AGE_MS, REJECTIONS_THRESHOLD, FAILED_RECORDS_THRESHOLD (environment,
default the template's defaults: use the stage's values); RUNBOOK_URL (where
docs/runbook.md is published, default "docs/runbook.md"); NOTIFY (the
notification handles, e.g. "@slack-offers-oncall", default none).

Monitors are found again by name and the tag managed-by:ops-datadog: a second
run updates them in place. The keys come from the environment only; nothing
here writes them anywhere. Python standard library only.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

MONITORS = Path(__file__).with_name("monitors.json")
DEFAULTS = {
    "ITERATOR_AGE_MS": "60000",
    "REJECTIONS_THRESHOLD": "100",
    "FAILED_RECORDS_THRESHOLD": "10",
    "STATS_NOT_COUNTED_THRESHOLD": "0",
    "TRANSACTION_REJECTIONS_THRESHOLD": "100",
    "RUNBOOK_URL": "docs/runbook.md",
    "NOTIFY": "",
}
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")


def stack_resource(stack, logical_id):
    """The physical id of a stack resource, through the AWS CLI."""
    out = subprocess.run(
        ["aws", "cloudformation", "describe-stack-resource", "--stack-name", stack,
         "--logical-resource-id", logical_id, "--query",
         "StackResourceDetail.PhysicalResourceId", "--output", "text"],
        check=True, capture_output=True, text=True)
    return out.stdout.strip()


def values(args):
    found = {name: os.environ.get(name, default) for name, default in DEFAULTS.items()}
    found["STAGE"] = args.stage
    for name, logical_id in [("DISPATCHER_FUNCTION", "OfferDispatcherFunction"),
                             ("FAILURE_QUEUE", "OfferDispatcherFailureQueue"),
                             ("STATS_FUNCTION", "CampaignStatsFunction"),
                             ("STATS_FAILURE_QUEUE", "CampaignStatsFailureQueue"),
                             ("PROGRESS_FUNCTION", "ChallengeProgressFunction"),
                             ("PROGRESS_FAILURE_QUEUE", "ChallengeProgressFailureQueue"),
                             ("VISITS_FUNCTION", "UserVisitsFunction"),
                             ("VISITS_FAILURE_QUEUE", "UserVisitsFailureQueue"),
                             # The physical id of a state machine is its ARN (statemachinearn).
                             ("PLAN_STATE_MACHINE", "PlanStateMachine")]:
        value = os.environ.get(name)
        if not value and args.stack:
            value = stack_resource(args.stack, logical_id)
            if name.endswith("FAILURE_QUEUE"):  # the physical id of a queue is its URL
                value = value.rstrip("/").rsplit("/", 1)[-1]
        if not value:
            sys.exit(f"{name} is needed: pass --stack or set {name}")
        # Datadog lowercases tag values (functionname, queuename, function).
        found[name] = value.lower()
    for name in ["ITERATOR_AGE_MS", "REJECTIONS_THRESHOLD", "FAILED_RECORDS_THRESHOLD",
                 "STATS_NOT_COUNTED_THRESHOLD", "TRANSACTION_REJECTIONS_THRESHOLD"]:
        if not re.fullmatch(r"[0-9]+", found[name]):
            sys.exit(f"{name}={found[name]!r} is not a whole number")
    return found


def fill(text, found):
    def one(match):
        name = match.group(1)
        if name not in found:
            sys.exit(f"monitors.json: unknown placeholder ${{{name}}}")
        # Filled into JSON text: escaped as a JSON string's content.
        return json.dumps(found[name])[1:-1]
    return PLACEHOLDER.sub(one, text)


def monitors(found):
    """The monitors' API bodies, placeholders filled, thresholds as numbers."""
    bodies = []
    for entry in json.loads(MONITORS.read_text())["monitors"]:
        body = json.loads(fill(json.dumps(entry["monitor"]), found))
        body["message"] = body["message"].strip()
        thresholds = body.get("options", {}).get("thresholds", {})
        for level, threshold in thresholds.items():
            thresholds[level] = float(threshold)
        body["tags"] = ["service:personalized-offers", f"env:{found['STAGE']}",
                        "managed-by:ops-datadog"]
        bodies.append(body)
    return bodies


def call(method, path, body=None, query=None):
    site = os.environ.get("DD_SITE", "datadoghq.com")
    url = f"https://api.{site}{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(
        url, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json",
                 "DD-API-KEY": os.environ["DD_API_KEY"],
                 "DD-APPLICATION-KEY": os.environ["DD_APP_KEY"]})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, choices=["dev", "prod"])
    parser.add_argument("--stack", help="the CloudFormation stack of the stage")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the monitors instead of applying them")
    args = parser.parse_args()
    bodies = monitors(values(args))
    if args.dry_run:
        json.dump(bodies, sys.stdout, indent=2)
        print()
        return
    for key in ["DD_API_KEY", "DD_APP_KEY"]:
        if not os.environ.get(key):
            sys.exit(f"{key} must be set in the environment")
    existing = {
        monitor["name"]: monitor["id"]
        for monitor in call("GET", "/api/v1/monitor", query={
            "monitor_tags": f"managed-by:ops-datadog,service:personalized-offers,env:{args.stage}"})
    }
    for body in bodies:
        if body["name"] in existing:
            call("PUT", f"/api/v1/monitor/{existing[body['name']]}", body)
            print(f"updated  {body['name']}")
        else:
            created = call("POST", "/api/v1/monitor", body)
            print(f"created  {body['name']} (id {created.get('id')})")


if __name__ == "__main__":
    main()
