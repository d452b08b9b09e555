"""schema/exports.schema.json, the JSON Schema editors use for the YAML configuration.

It is a valid draft 2020-12 schema, accepts every config/*.yaml, rejects the mistakes the loader
rejects (pointing at the same key), names the same keys as the loader, and agrees with
`apsis-exportd check` on every case the loader knows today. schema/drop-in.schema.json, the one for
include:d drop-in files, is held to the same: it agrees with `check` on a main file including it.
"""

import copy
import glob
import json
import os
import re
import subprocess
import tempfile
import unittest
from urllib.parse import urljoin

from harness import DAEMON

try:
    import jsonschema
    import yaml
    MISSING = None
except ImportError as e:  # CI installs both through .ci/install-deps
    MISSING = (f"{e}: install Debian's python3-jsonschema and python3-yaml "
               "(apt-get install python3-jsonschema python3-yaml) and run the tests with /usr/bin/python3")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../.."))
SCHEMA = os.path.join(ROOT, "schema/exports.schema.json")
DROP_IN_SCHEMA = os.path.join(ROOT, "schema/drop-in.schema.json")
BCRYPT_S3CRET = "$2b$04$ZX5JRp1RlXrPcwtVmf2ZW.YnPMvwnarFtlXJROYJxhBRqPirxfv9y"  # "s3cret" at cost 4
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "config/*.yaml")))
MODELINE = "# yaml-language-server: $schema=../schema/exports.schema.json"

# A configuration `check` accepts offline: loopback account, inline secret, every export key used.
BASE = {
    "state_db": "./state/jobs.sqlite3",
    "output_dir": "./exports",
    "max_concurrent_downloads": 8,
    "accounts": {
        "main": {
            "base_url": "http://127.0.0.1:18080",
            "client_id": "demo-client",
            "client_secret": "demo-secret",
            "token_path": "/oauth/token",
            "paths": {"duplicates": "/audience/profiles/reports/duplicates"},
            "request_timeout": "60s",
            "max_connections": 16,
            "poll_url_field": "file_download_url",
            "budget": {"submits": "1/2s", "event_submits": "1/2m", "polls": "30/1m", "tokens": "5/1m"},
        },
    },
    "polling": {"initial_delay": "100ms", "multiplier": 2, "max_delay": "1s", "url_validity": "24h",
                "failed_export_after_503s": 3},
    "retry": {"initial_delay": "50ms", "multiplier": 2, "max_delay": "500ms", "max_attempts": 5,
              "max_download_attempts": 3},
    "exports": {
        "dupes": {
            "account": "main",
            "kind": "duplicates",
            "schedule": "30 6 * * *",
            "timezone": "Europe/Stockholm",
            "request": {
                "segments": {"timezone": "Europe/Stockholm",
                             "segment_discriminators": {"women": "usercreated.segments.women-rjz6b8td2n"},
                             "filter": "women"},
                "topic_discriminators": ["usercreated.topics.shoes-8u78kijgzn"],
                "channel_discriminator": "com.apsis1.channels.email",
            },
            "format": "csv",
            "compression": "gzip",
            "output": "{export}/{export}-{scheduled:%Y%m%dT%H%M%SZ}.{ext}",
            "polling": {"initial_delay": "1s"},
            "catchup": "latest",
            "overlap": "skip",
            "on_expired": "resubmit",
            "on_failed_export": "resubmit",
            "max_resubmits": 1,
        },
    },
}

# Exports of the two other kinds, for mutations that add them to BASE.
SEGMENTS = {"account": "main", "kind": "segments", "format": "xlsx",
            "request": {"segment_discriminator": "usercreated.segments.women-rjz6b8td2n"}}
EVENTS = {"account": "main", "kind": "events", "window": "1d", "format": "json",
          "request": {"attributes": ["email"], "events": ["com.apsis1.events.web.visit"]}}


def put(path, value):
    """A mutation setting the key at `path` (dotted) to `value`."""
    def mutate(doc):
        *parents, last = path.split(".")
        for key in parents:
            doc = doc[key]
        doc[last] = value
    return mutate


def drop(path):
    """A mutation removing the key at `path` (dotted)."""
    def mutate(doc):
        *parents, last = path.split(".")
        for key in parents:
            doc = doc[key]
        del doc[last]
    return mutate


def rename(path, new_name):
    """A mutation renaming the key at `path` (dotted), keeping its value."""
    def mutate(doc):
        *parents, last = path.split(".")
        for key in parents:
            doc = doc[key]
        doc[new_name] = doc.pop(last)
    return mutate


def both(*mutations):
    def mutate(doc):
        for m in mutations:
            m(doc)
    return mutate


def at(dotted):
    """"exports.dupes.on_success.0" as a jsonschema error path."""
    return tuple(int(part) if part.isdigit() else part for part in dotted.split(".")) if dotted else ()


# (what, mutation of BASE, where the schema's error is, its keyword or a part of its message or None,
#  what `check` says or None when the loader does not know the key yet)
BAD = [
    ("typo at the top level", put("output_dri", "./x"), "", "'output_dri'", "unknown key 'output_dri'"),
    ("typo in an export", put("exports.dupes.schedul", "@daily"), "exports.dupes", "'schedul'",
     "unknown key 'schedul' in exports.dupes"),
    ("typo in an account", put("accounts.main.client_secert", "x"), "accounts.main", "'client_secert'",
     "unknown key 'client_secert' in accounts.main"),
    ("typo in polling", put("polling.max_dealy", "1m"), "polling", "'max_dealy'", "unknown key 'max_dealy'"),
    ("typo in retry", put("retry.max_attempt", 3), "retry", "'max_attempt'", "unknown key 'max_attempt'"),
    ("typo in paths", put("accounts.main.paths.exports", "/x"), "accounts.main.paths", "'exports'",
     "unknown key 'exports' in accounts.main.paths"),
    ("typo in an export's polling", put("exports.dupes.polling.delay", "1s"), "exports.dupes.polling", "'delay'",
     "unknown key 'delay' in exports.dupes.polling"),
    ("unknown kind", put("exports.dupes.kind", "duplicate"), "exports.dupes.kind", None,
     "exports.dupes.kind: unknown value 'duplicate'"),
    ("unknown format", put("exports.dupes.format", "pdf"), "exports.dupes.format", None,
     "exports.dupes.format: unknown value 'pdf'"),
    ("json for duplicates", put("exports.dupes.format", "json"), "exports.dupes.format", None,
     "exports.dupes.format: kind: duplicates takes csv or xlsx (json is for kind: events), got 'json'"),
    ("csv for events", put("exports.ev", {**EVENTS, "format": "csv"}), "exports.ev.format", None,
     "exports.ev.format: kind: events takes json (event exports are JSON files), got 'csv'"),
    ("window on duplicates", put("exports.dupes.window", "1d"), "exports.dupes", "not",
     "exports.dupes.window: only event exports take a window (this is kind: duplicates)"),
    ("window of zero", put("exports.ev", {**EVENTS, "window": "0s"}), "exports.ev.window", "pattern",
     "exports.ev.window: must be greater than 0"),
    ("unknown on_failed_export", put("exports.dupes.on_failed_export", "retry"), "exports.dupes.on_failed_export",
     None, "exports.dupes.on_failed_export: unknown value 'retry'"),
    ("negative max_resubmits", put("exports.dupes.max_resubmits", -1), "exports.dupes.max_resubmits", None,
     "exports.dupes.max_resubmits: must be between 0"),
    ("failed_export_after_503s of 0", put("polling.failed_export_after_503s", 0), "polling.failed_export_after_503s",
     None, "polling.failed_export_after_503s: must be between 1"),
    ("failed_export_after_503s of 0 in an export", put("exports.dupes.polling.failed_export_after_503s", 0),
     "exports.dupes.polling.failed_export_after_503s", None,
     "exports.dupes.polling.failed_export_after_503s: must be between 1"),
    ("max_requests_per_second", put("accounts.main.max_requests_per_second", 10), "accounts.main",
     "'max_requests_per_second'", "accounts.main.max_requests_per_second: no longer supported: the account's API "
     "budget is set per call kind under budget:"),
    ("budget without a window", put("accounts.main.budget.polls", 30), "accounts.main.budget.polls", "type",
     "accounts.main.budget.polls: expected COUNT/DURATION such as 30/1m, got '30'"),
    ("budget of 0 calls", put("accounts.main.budget.submits", "0/1s"), "accounts.main.budget.submits", "pattern",
     "accounts.main.budget.submits: the count must be between 1"),
    ("budget over 0s", put("accounts.main.budget.tokens", "5/0s"), "accounts.main.budget.tokens", "pattern",
     "accounts.main.budget.tokens: the duration must be greater than 0"),
    ("typo in budget", put("accounts.main.budget.poll", "30/1m"), "accounts.main.budget", "'poll'",
     "unknown key 'poll' in accounts.main.budget"),
    ("unknown poll_url_field", put("accounts.main.poll_url_field", "file_download_url_v3"),
     "accounts.main.poll_url_field", None, "accounts.main.poll_url_field: unknown value 'file_download_url_v3'"),
    ("segments with both", put("exports.seg", {**SEGMENTS, "request": {"segment_discriminator": "s-1",
                                                                       "segment_definition": "age > 30"}}),
     "exports.seg.request", "oneOf", "exports.seg.request.segment_definition: not allowed together with "
     "segment_discriminator"),
    ("segments with neither", put("exports.seg", {**SEGMENTS, "request": {"known": True}}), "exports.seg.request",
     "oneOf", "exports.seg.request: missing segment_discriminator"),
    ("segments without a request", put("exports.seg", {"account": "main", "kind": "segments"}), "exports.seg",
     "'request' is a required property", "missing required key 'request' in exports.seg"),
    ("events without attributes or tags", put("exports.ev", {**EVENTS, "request": {"attributes": []}}),
     "exports.ev.request", "anyOf", "exports.ev.request.attributes: expected at least one attribute or tag"),
    ("events without start_at or window", put("exports.ev", {"account": "main", "kind": "events",
                                                              "request": EVENTS["request"]}),
     "exports.ev.request", "'start_at' is a required property", "exports.ev.request.events: start_at is required"),
    ("events with a start_at that is no string", put("exports.ev", {**EVENTS, "request": {
        "tags": ["vip"], "start_at": 1700000000}}), "exports.ev.request.start_at", "type",
     "exports.ev.request.start_at: expected a string"),
    ("unknown compression", put("exports.dupes.compression", "zip"), "exports.dupes.compression", None,
     "exports.dupes.compression: unknown value 'zip'"),
    ("unknown catchup", put("exports.dupes.catchup", "all"), "exports.dupes.catchup", None,
     "exports.dupes.catchup: unknown value 'all'"),
    ("unknown overlap", put("exports.dupes.overlap", "queue"), "exports.dupes.overlap", None,
     "exports.dupes.overlap: unknown value 'queue'"),
    ("unknown on_expired", put("exports.dupes.on_expired", "retry"), "exports.dupes.on_expired", None,
     "exports.dupes.on_expired: unknown value 'retry'"),
    ("duration with a space", put("polling.initial_delay", "10 s"), "polling.initial_delay", "pattern",
     "polling.initial_delay: spaces are not allowed"),
    ("duration with a fraction", put("retry.max_delay", "1.5m"), "retry.max_delay", "pattern",
     "retry.max_delay: fractions are not allowed"),
    ("duration with an unknown unit", put("accounts.main.request_timeout", "30sec"), "accounts.main.request_timeout",
     "pattern", "accounts.main.request_timeout: unknown unit 'sec'"),
    ("duration without a unit", put("polling.url_validity", 86400), "polling.url_validity", "type",
     "polling.url_validity: missing unit"),
    ("duration of zero", put("exports.dupes.polling.initial_delay", "0s"), "exports.dupes.polling.initial_delay",
     "pattern", "exports.dupes.polling.initial_delay: must be greater than 0"),
    ("duration units out of order", put("polling.max_delay", "30m1h"), "polling.max_delay", "pattern",
     "polling.max_delay: units out of order"),
    ("quoted number", put("polling.multiplier", "2"), "polling.multiplier", None,
     "polling.multiplier: expected a number, got a quoted string"),
    ("multiplier below 1", put("retry.multiplier", 0.5), "retry.multiplier", None,
     "retry.multiplier: must be at least 1"),
    ("max_attempts of 0", put("retry.max_attempts", 0), "retry.max_attempts", None,
     "retry.max_attempts: must be between 1"),
    ("negative max_concurrent_downloads", put("max_concurrent_downloads", -1), "max_concurrent_downloads", None,
     "max_concurrent_downloads: must be between 0"),
    ("missing account", drop("exports.dupes.account"), "exports.dupes", "'account' is a required property",
     "missing required key 'account' in exports.dupes"),
    ("missing kind", drop("exports.dupes.kind"), "exports.dupes", "'kind' is a required property",
     "missing required key 'kind' in exports.dupes"),
    ("missing state_db", drop("state_db"), "", "'state_db' is a required property",
     "missing required key 'state_db' at the top level"),
    ("missing base_url", drop("accounts.main.base_url"), "accounts.main", "'base_url' is a required property",
     "missing required key 'base_url' in accounts.main"),
    ("no accounts", put("accounts", {}), "accounts", "minProperties",
     "accounts: at least one account is required"),
    ("include of a mapping", put("include", {"a": "b"}), "include", None,
     "include: expected a glob such as conf.d/*.yaml, or a list of them"),
    ("no secret", drop("accounts.main.client_secret"), "accounts.main", None,
     "accounts.main: missing client_secret_file"),
    ("two secrets", put("accounts.main.client_secret_file", "./secret"), "accounts.main", None,
     "both client_secret and client_secret_file are set"),
    ("base_url with a path", put("accounts.main.base_url", "https://api.apsis.one/v2"), "accounts.main.base_url",
     "pattern", "accounts.main.base_url: expected scheme://host[:port] without a path"),
    ("plain http to a remote host", put("accounts.main.base_url", "http://api.apsis.one"), "accounts.main.base_url",
     "pattern", "accounts.main.base_url: plain http is only allowed to localhost"),
    ("token_path without '/'", put("accounts.main.token_path", "oauth/token"), "accounts.main.token_path",
     "pattern", "accounts.main.token_path: expected a URL path starting with '/'"),
    ("invalid export name", rename("exports.dupes", "-dupes"), "exports", "pattern",
     "invalid export name '-dupes'"),
    ("invalid account name", rename("accounts.main", "main account"), "accounts", "pattern",
     "invalid account name 'main account'"),
    ("absolute output", put("exports.dupes.output", "/tmp/{export}.{ext}"), "exports.dupes.output",
     "pattern", "exports.dupes.output: the output path '/tmp/export.csv' is absolute"),
    ("output leaving output_dir", put("exports.dupes.output", "{export}/../../{job}.{ext}"), "exports.dupes.output",
     "pattern", "exports.dupes.output: '..' in the output path"),
    ("time zone with '..'", put("exports.dupes.timezone", "Europe/../../etc/passwd"), "exports.dupes.timezone",
     "pattern", "exports.dupes.timezone: invalid time zone"),
    ("cron with 4 fields", put("exports.dupes.schedule", "30 6 * *"), "exports.dupes.schedule", "pattern",
     "exports.dupes.schedule: cron expression '30 6 * *' has 4 fields"),
    ("unknown macro", put("exports.dupes.schedule", "@fortnightly"), "exports.dupes.schedule", "pattern",
     "exports.dupes.schedule: unknown macro"),
    ("'every' without a duration", put("exports.dupes.schedule", "every"), "exports.dupes.schedule",
     "pattern", "exports.dupes.schedule: 'every' needs a duration"),
    ("request that is a list", put("exports.dupes.request", ["a", "b"]), "exports.dupes.request", "type",
     "exports.dupes.request: expected a mapping"),
    ("export that is a string", put("exports.dupes", "duplicates"), "exports.dupes", "type",
     "exports.dupes: expected a mapping"),
    ("empty client_id", put("accounts.main.client_id", ""), "accounts.main.client_id", "minLength",
     "accounts.main.client_id: must not be empty"),
    # The request body as docs/apsis-api.md documents it (daemon/config/request_check.cpp).
    ("segments without filter", drop("exports.dupes.request.segments.filter"), "exports.dupes.request.segments",
     "'filter' is a required property", "exports.dupes.request.segments: missing required key 'filter'"),
    ("segments with both maps", put("exports.dupes.request.segments.segment_definitions", {"women": "gender = 'f'"}),
     "exports.dupes.request.segments", "oneOf", 'exports.dupes.request.segments.segment_definitions: not allowed together with segment_discriminators'),
    ("segments with neither map", drop("exports.dupes.request.segments.segment_discriminators"),
     "exports.dupes.request.segments", "oneOf", 'exports.dupes.request.segments: missing segment_discriminators'),
    # The loader refuses both only for consents, where channels are documented; the schema for any kind.
    ("channels and channel_discriminator", put("exports.dupes.request.channels", [
        {"field_name": "sms", "channel_discriminator": "com.apsis1.channels.sms"}]), "exports.dupes.request", "not",
     None),
    ("attribute without its id", put("exports.dupes.request.attributes", [{"field_name": "email"}]),
     "exports.dupes.request.attributes.0", "'attribute_version_id' is a required property", "exports.dupes.request.attributes[0]: missing required key 'attribute_version_id'"),
    ("empty topic discriminator", put("exports.dupes.request.topic_discriminators", [""]),
     "exports.dupes.request.topic_discriminators.0", "minLength", 'exports.dupes.request.topic_discriminators[0]: must not be empty'),
    # The operator keys: admin endpoint, history, retention, manifests, hook.
    ("admin_listen that is a number", put("admin_listen", 9464), "admin_listen", "type", "admin_listen: missing port in '9464'"),
    ("admin_listen without a host", put("admin_listen", "9464"), "admin_listen", "pattern", "admin_listen: missing port in '9464'"),
    ("admin_listen with a DNS name", put("admin_listen", "metrics.example.com:9464"), "admin_listen", "pattern",
     "admin_listen: host 'metrics.example.com' is not an IP address"),
    ("admin_allow_remote that is a word", put("admin_allow_remote", "maybe"), "admin_allow_remote", None, "admin_allow_remote: unknown value 'maybe' (expected true or false)"),
    ("admin_allow_remote without users", put("admin_allow_remote", True), "", "'admin_web' is a required property",
     "admin_allow_remote: other machines may read the admin endpoint only with a password"),
    ("a basic auth password in clear", put("admin_web", {"basic_auth_users": {"alice": "s3cret"}}),
     "admin_web.basic_auth_users.alice", "pattern", "admin_web.basic_auth_users.alice: not a bcrypt hash"),
    ("a bcrypt cost below 4", put("admin_web", {"basic_auth_users": {"alice": BCRYPT_S3CRET.replace("$04$", "$03$")}}),
     "admin_web.basic_auth_users.alice", "pattern", "bcrypt cost 3 is outside 04..31"),
    ("tls_server_config without key_file", put("admin_web", {"tls_server_config": {"cert_file": "secret"}}),
     "admin_web.tls_server_config", "'key_file' is a required property", "missing required key 'key_file' in admin_web.tls_server_config"),
    ("history_days of 0", put("history_days", 0), "history_days", None, 'history_days: must be between 1'),
    ("keep with an unknown key", put("exports.dupes.keep", {"count": 3, "size": "1G"}), "exports.dupes.keep",
     "'size'", "unknown key 'size' in exports.dupes.keep"),
    ("keep with count 0", put("exports.dupes.keep", {"count": 0}), "exports.dupes.keep.count", None, 'exports.dupes.keep.count: must be between 1'),
    ("keep with nothing", put("exports.dupes.keep", {}), "exports.dupes.keep", "minProperties",
     'exports.dupes.keep: expected count: N and/or days: D'),
    ("manifest that is a word", put("exports.dupes.manifest", "no"), "exports.dupes.manifest", None, "exports.dupes.manifest: unknown value 'no' (expected true or false)"),
    ("on_success that is empty", put("exports.dupes.on_success", []), "exports.dupes.on_success", "minItems",
     'exports.dupes.on_success: expected a non-empty list'),
    ("on_success without a program", put("exports.dupes.on_success", ["", "--all"]), "exports.dupes.on_success.0",
     "minLength", 'exports.dupes.on_success[0]: must not be empty'),
    ("on_success_timeout without on_success", put("exports.dupes.on_success_timeout", "1m"), "exports.dupes",
     "'on_success' is a dependency of 'on_success_timeout'", 'exports.dupes.on_success_timeout: there is no on_success command to time out'),
    ("on_success that is a string", put("exports.dupes.on_success", "upload.sh --all"), "exports.dupes.on_success",
     "type", 'exports.dupes.on_success: expected a non-empty list'),
    ("on_success_timeout that is no duration",
     both(put("exports.dupes.on_success", ["/bin/true"]), put("exports.dupes.on_success_timeout", "5 min")),
     "exports.dupes.on_success_timeout", "pattern", "exports.dupes.on_success_timeout: spaces are not allowed in duration '5 min'"),
]

# (what, mutation of BASE, environment for `check`, whether the loader knows every key used)
GOOD = [
    ("the base configuration", lambda doc: None, {}, True),
    ("only the required keys", lambda doc: [doc.pop(k) for k in ("polling", "retry", "exports",
                                                                  "max_concurrent_downloads")], {}, True),
    ("empty exports, polling and retry", both(put("exports", None), put("polling", None), put("retry", None)), {},
     True),
    ("durations of every unit", both(put("polling.initial_delay", "1500ms"), put("polling.max_delay", "1h30m"),
                                     put("polling.url_validity", "1d"), put("retry.max_delay", "2h"),
                                     put("accounts.main.request_timeout", "1m30s500ms")), {}, True),
    ("include of an empty conf.d", put("include", ["conf.d/*.yaml", "more/*.yaml"]), {}, True),
    ("macro schedule", put("exports.dupes.schedule", "@daily"), {}, True),
    ("interval schedule", put("exports.dupes.schedule", "every 1h30m"), {}, True),
    ("cron with names", put("exports.dupes.schedule", "0 2 * JAN-MAR MON"), {}, True),
    ("no schedule", put("exports.dupes.schedule", None), {}, True),
    ("zero limits", both(put("max_concurrent_downloads", 0), put("accounts.main.max_connections", 0),
                         put("exports.dupes.max_resubmits", 0)), {}, True),
    ("budgets of every unit, some of them", put("accounts.main.budget", {"polls": "60/1m", "tokens": "1/500ms",
                                                                        "submits": "${TEST_BUDGET}"}),
     {"TEST_BUDGET": "2/1h30m"}, True),
    ("the v2 poll URL", put("accounts.main.poll_url_field", "file_download_url_v2"), {}, True),
    ("every export path", put("accounts.main.paths", {"duplicates": "/a", "consents": "/b", "segments": "/c",
                                                       "events": "/d"}), {}, True),
    ("a segments export by AQL, as csv", put("exports.seg", {**SEGMENTS, "format": "csv", "request": {
        "segment_definition": "age > 30"}}), {}, True),
    ("a segments export", put("exports.seg", SEGMENTS), {}, True),
    ("an events export with a window", put("exports.ev", EVENTS), {}, True),
    ("an events export with start_at and the default format",
     put("exports.ev", {"account": "main", "kind": "events", "on_failed_export": "fail", "request": {
         "segment_filter": {"any": "thing"}, "tags": ["vip"], "events": ["e-1"],
         "start_at": "2024-03-01T00:00:00Z", "end_at": "2024-03-02T00:00:00Z"}}), {}, True),
    ("an events export with only attributes", put("exports.ev", {"account": "main", "kind": "events",
                                                                  "request": {"attributes": ["email"]}}), {}, True),
    ("environment references in strings, numbers and choices",
     both(put("accounts.main.base_url", "http://127.0.0.1:${TEST_PORT}"),
          put("accounts.main.client_id", "${TEST_CLIENT}"),
          put("accounts.main.request_timeout", "${TEST_TIMEOUT}"),
          put("retry.max_attempts", "${TEST_ATTEMPTS}"),
          put("polling.multiplier", "${TEST_MULTIPLIER}"),
          put("exports.dupes.kind", "${TEST_KIND}"),
          put("exports.dupes.output", "${TEST_DIR}/{export}-{job}.{ext}")),
     {"TEST_PORT": "18080", "TEST_CLIENT": "c", "TEST_TIMEOUT": "30s", "TEST_ATTEMPTS": "3",
      "TEST_MULTIPLIER": "1.5", "TEST_KIND": "consents", "TEST_DIR": "reports"}, True),
    ("a request field the schema does not describe",
     put("exports.dupes.request", {"future_field": {"x": [1, 2]}, "tags": [{"field_name": "vip"}]}), {}, True),
    ("an empty request", put("exports.dupes.request", None), {}, True),
    ("segments defined by AQL", put("exports.dupes.request.segments", {
        "segment_definitions": {"women": "gender = 'f'"}, "filter": "women"}), {}, True),
    ("consents per channel", both(put("exports.dupes.kind", "consents"), put("exports.dupes.request", {
        "section_discriminator": "com.apsis1.sections.default",
        "channels": [{"field_name": "email_consent", "channel_discriminator": "com.apsis1.channels.email"}],
        "attributes": [{"field_name": "email", "attribute_version_id": "5c2f4a6e-8a4d-4c8b-9a51-3f0e7d2b6c11"}]})),
     {}, True),
    ("https base_url with a slash, IPv6 and a port", put("accounts.main.base_url", "https://[2001:db8::1]:8443/"), {},
     True),
    ("plain http to localhost", put("accounts.main.base_url", "http://localhost:8080"), {}, True),
    ("literal braces and directories in output", put("exports.dupes.output", "{{raw}}/{scheduled:%Y/%m}/{job}.{ext}"),
     {}, True),
    ("names with '.', '_' and '-'", both(rename("accounts.main", "EU.main_1"), put("exports.dupes.account", "EU.main_1"),
                                         rename("exports.dupes", "a.b_c-1")), {}, True),
    ("admin endpoint and job history",
     both(put("admin_listen", "[::1]:9464"), put("admin_allow_remote", True), put("history_days", 30),
          put("admin_web", {"basic_auth_users": {"alice": BCRYPT_S3CRET}})), {}, True),
    ("admin endpoint by name", put("admin_listen", "localhost:9464"), {}, True),
    ("retention, manifest and hook",
     both(put("exports.dupes.keep", {"count": 10, "days": 7}), put("exports.dupes.manifest", False),
          put("exports.dupes.on_success", ["/usr/local/bin/upload", "--bucket", "exports"]),
          put("exports.dupes.on_success_timeout", "30s")), {}, True),
    ("retention by days", put("exports.dupes.keep", {"days": 7}), {}, True),
]


def walk_strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk_strings(key)
            yield from walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_strings(value)
    elif isinstance(node, str):
        yield node


def env_references(doc):
    """The ${NAME}s used in the document's values ($$ is a literal '$'); comments do not count."""
    names = set()
    for text in walk_strings(doc):
        names.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text.replace("$$", "")))
    return names


def loader_keys(array_name):
    """The keys of one `constexpr std::array<std::string_view, N> NAME{...}` in daemon/config."""
    for source in glob.glob(os.path.join(ROOT, "daemon/config/*.cpp")):
        with open(source) as f:
            match = re.search(re.escape(array_name) + r"\s*\{([^}]*)\}", f.read())
        if match:
            return set(re.findall(r'"([^"]+)"', match.group(1)))
    raise AssertionError(f"{array_name} not found in daemon/config/*.cpp: update this test")


class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if MISSING:
            return
        with open(SCHEMA) as f:
            cls.schema = json.load(f)
        cls.validator = jsonschema.Draft202012Validator(cls.schema)

    def setUp(self):
        if MISSING:
            self.fail(MISSING)

    def check(self, doc, env=None):
        """`apsis-exportd check` on `doc` written as YAML in a fresh directory."""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "exportd.yaml")
            with open(path, "w") as f:
                f.write(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
            with open(os.path.join(d, "secret"), "w") as f:
                f.write("demo-secret\n")
            return subprocess.run([DAEMON, "check", "--config", path], capture_output=True, text=True, timeout=60,
                                  env={**os.environ, **(env or {})})

    def errors(self, doc):
        # Validated as read back from YAML, as an editor and the loader see it.
        return list(self.validator.iter_errors(yaml.safe_load(yaml.safe_dump(doc, sort_keys=False))))

    def test_schema_is_valid_draft_2020_12(self):
        self.assertEqual(self.schema["$schema"], "https://json-schema.org/draft/2020-12/schema")
        jsonschema.Draft202012Validator.check_schema(self.schema)
        for key in ("$id", "title", "description"):
            self.assertTrue(self.schema.get(key), key)

    def test_schema_has_no_duplicate_keys(self):
        # json.load keeps the last of two equal keys: a merge that adds a second top-level "if" would
        # silently drop the first rule.
        def no_duplicates(pairs):
            keys = [k for k, _ in pairs]
            self.assertEqual(len(keys), len(set(keys)), f"duplicate keys among {keys}")
            return dict(pairs)

        with open(SCHEMA) as f:
            json.load(f, object_pairs_hook=no_duplicates)

    def test_every_property_has_a_description(self):
        undocumented = []

        def visit(node, where):
            if isinstance(node, dict):
                for name, sub in node.get("properties", {}).items():
                    if "description" not in sub:
                        undocumented.append(f"{where}/properties/{name}")
                for key, value in node.items():
                    visit(value, f"{where}/{key}")
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    visit(value, f"{where}/{i}")

        visit(self.schema, "#")
        self.assertEqual(undocumented, [])

    def test_schema_names_the_loaders_keys(self):
        properties = lambda ref: set(ref["properties"])  # noqa: E731
        defs = self.schema["$defs"]
        sections = [
            ("kTopKeys", properties(self.schema)),
            ("kPollingKeys", properties(defs["polling"])),
            ("kRetryKeys", properties(defs["retry"])),
            ("kAccountKeys", properties(defs["account"])),
            ("kPathKeys", properties(defs["account"]["properties"]["paths"])),
            ("kBudgetKeys", properties(defs["account"]["properties"]["budget"])),
            ("kExportKeys", properties(defs["export"])),
            ("kKeepKeys", properties(defs["export"]["properties"]["keep"])),
            ("kWebKeys", properties(self.schema["properties"]["admin_web"])),
            ("kTlsKeys", properties(self.schema["properties"]["admin_web"]["properties"]["tls_server_config"])),
        ]
        for array_name, in_schema in sections:
            with self.subTest(array_name):
                in_loader = loader_keys(array_name)
                self.assertEqual(in_loader - in_schema, set(), "keys the loader reads but the schema lacks")
                self.assertEqual(in_schema - in_loader, set(), "keys the loader does not know")

    def test_repository_configs_pass(self):
        self.assertTrue(CONFIGS, "no config/*.yaml found")
        for path in CONFIGS:
            with self.subTest(os.path.relpath(path, ROOT)), open(path) as f:
                text = f.read()
                self.assertEqual(text.splitlines()[0], MODELINE, "the first line names the schema for editors")
                problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                            for e in self.validator.iter_errors(yaml.safe_load(text))]
                self.assertEqual(problems, [])

    def test_repository_configs_pass_check(self):
        known = {"APSIS_FAKE_PORT": "18080", "APSIS_CLIENT_ID": "offline-client"}
        for path in CONFIGS:
            with self.subTest(os.path.relpath(path, ROOT)), open(path) as f, tempfile.TemporaryDirectory() as d:
                doc = yaml.safe_load(f)
                env = {}
                for name in env_references(doc):
                    if name == "CREDENTIALS_DIRECTORY":  # systemd's LoadCredential=: a secret per file
                        env[name] = d
                    elif name in known:
                        env[name] = known[name]
                    else:
                        self.skipTest(f"uses ${{{name}}}, which this test cannot provide offline")
                for account in (doc.get("accounts") or {}).values():
                    secret_file = account.get("client_secret_file", "")
                    if secret_file.startswith("${CREDENTIALS_DIRECTORY}/"):
                        with open(os.path.join(d, secret_file.split("/", 1)[1]), "w") as secret:
                            secret.write("offline-secret\n")
                result = subprocess.run([DAEMON, "check", "--config", path], capture_output=True, text=True,
                                        timeout=60, env={**os.environ, **env})
                self.assertEqual(result.returncode, 0, result.stderr)

    def test_packaged_config_passes_schema_and_check(self):
        # The Debian package's /etc/apsis-exportd/apsis-exportd.yaml, generated by cmake/packaged_config.cmake.
        path = os.path.join(os.path.dirname(os.path.abspath(DAEMON)), "packaging/apsis-exportd.yaml")
        with open(path) as f:
            text = f.read()
        self.assertEqual(text.splitlines()[0],
                         "# yaml-language-server: $schema=/usr/share/apsis-exportd/exports.schema.json")
        doc = yaml.safe_load(text)
        self.assertEqual([f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in self.validator.iter_errors(doc)],
                         [])
        self.assertEqual(sorted(env_references(doc)), [], "sudo -u apsis-exportd has none of the unit's environment")
        self.assertEqual((doc["state_db"], doc["output_dir"]),
                         ("/var/lib/apsis-exportd/jobs.sqlite3", "/var/lib/apsis-exportd/exports"))
        with tempfile.TemporaryDirectory() as d:
            secret = os.path.join(d, "apsis-secret")
            with open(secret, "w") as f:
                f.write("offline-secret\n")
            config = os.path.join(d, "apsis-exportd.yaml")
            with open(config, "w") as f:
                f.write(text.replace("client_secret_file: /etc/apsis-exportd/apsis-secret", f"client_secret_file: {secret}"))
            result = subprocess.run([DAEMON, "check", "--config", config], capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)

    def test_bad_configs_are_rejected_at_the_key(self):
        for what, mutate, where, words, _ in BAD:
            with self.subTest(what):
                doc = copy.deepcopy(BASE)
                mutate(doc)
                errors = self.errors(doc)
                shown = [(tuple(e.absolute_path), e.message) for e in errors]
                self.assertTrue(errors, "the schema accepts it")
                self.assertTrue(all(path[:len(at(where))] == at(where) for path, _ in shown),
                                f"errors outside {where or 'the top level'}: {shown}")
                self.assertTrue(any(tuple(e.absolute_path) == at(where) and
                                    (words is None or words == e.validator or words in e.message) for e in errors),
                                f"no error at {where!r} from or saying {words!r}: {shown}")

    def test_bad_configs_are_rejected_by_check_too(self):
        for what, mutate, _, _, loader_says in BAD:
            if loader_says is None:
                continue
            with self.subTest(what):
                doc = copy.deepcopy(BASE)
                mutate(doc)
                result = self.check(doc)
                self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
                self.assertIn(loader_says, result.stderr)

    def test_good_configs_are_accepted(self):
        for what, mutate, env, loader_knows in GOOD:
            with self.subTest(what):
                doc = copy.deepcopy(BASE)
                mutate(doc)
                self.assertEqual([(tuple(e.absolute_path), e.message) for e in self.errors(doc)], [])
                if loader_knows:
                    result = self.check(doc, env)
                    self.assertEqual(result.returncode, 0, result.stderr)


# Drop-in files (include:): `check` reads them through a main file, BASE with this include:.
DROP_IN_NAME = "conf.d/50-test.yaml"
ACME = {"base_url": "http://127.0.0.1:18080", "client_id": "acme-id", "client_secret_file": "acme.secret"}
ACME_CONSENTS = {"account": "acme", "kind": "consents", "schedule": "@daily"}

# A value the main file accepts for each top-level key, so that a drop-in's refusal is about the key;
# a key missing here is tried with null.
MAIN_VALUES = {**{key: value for key, value in BASE.items() if key not in ("accounts", "exports")},
               "include": "more/*.yaml", "admin_listen": "127.0.0.1:9464", "admin_allow_remote": False,
               "admin_web": {"basic_auth_users": {"alice": BCRYPT_S3CRET}}, "history_days": 30,
               "lease_ttl": "15s", "accounts": {}, "exports": {}}

# (what, the drop-in: a document or its text)
DROP_IN_GOOD = [
    ("accounts only", {"accounts": {"acme": ACME}}),
    ("exports only, of the main file's account", {"exports": {"acme-dupes": {**BASE["exports"]["dupes"],
                                                                             "output": "acme/{export}-{job}.{ext}"}}}),
    ("accounts and exports", {"accounts": {"acme": ACME}, "exports": {"acme-consents": ACME_CONSENTS}}),
    ("an empty mapping", {}),
    ("an empty file", ""),
    ("a file of comments only", "# acme: moved to 60-acme.yaml\n"),
    ("empty accounts and exports", "accounts:\nexports:\n"),
    ("an export of a kind with its own rules", {"exports": {"acme-events": {**EVENTS}}}),
]

# (what, the drop-in, where the schema's error is, a part of its message, what `check` says)
DROP_IN_BAD = [
    ("a list at the top", ["accounts"], "", "not of type", "expected a mapping at the top level with accounts: and "
     "exports: (a drop-in file)"),
    ("a typo at the top", {"export": {"acme-consents": ACME_CONSENTS}}, "", "'export'", "unknown key 'export'"),
    ("a typo in an export", {"exports": {"e": {**ACME_CONSENTS, "account": "main", "schedul": "@daily"}}},
     "exports.e", "'schedul'", "unknown key 'schedul' in exports.e"),
    ("a typo in an account", {"accounts": {"acme": {**ACME, "client_secert": "x"}}}, "accounts.acme",
     "'client_secert'", "unknown key 'client_secert' in accounts.acme"),
    ("a bad value in an export", {"exports": {"e": {**ACME_CONSENTS, "account": "main", "catchup": "all"}}},
     "exports.e.catchup", "", "exports.e.catchup: unknown value 'all'"),
    ("a bad export name", {"exports": {"-e": {**ACME_CONSENTS, "account": "main"}}}, "exports", "",
     "invalid export name '-e'"),
    ("accounts that is a list", {"accounts": ["acme"]}, "accounts", "not of type", "accounts"),
] + [(f"the main file's {key}", {key: value}, "", f"'{key}'", f"{key}: ")
     for key, value in MAIN_VALUES.items() if key not in ("accounts", "exports")]


def drop_in_validator(main, drop_in):
    """A validator of `drop_in` that finds exports.schema.json, which it $refs, by its $id."""
    try:
        from referencing import Registry, Resource
    except ImportError:  # jsonschema before 4.18 (Debian 12 has 4.10): a RefResolver with a store
        resolver = jsonschema.RefResolver.from_schema(drop_in, store={main["$id"]: main})
        return jsonschema.Draft202012Validator(drop_in, resolver=resolver)
    registry = Registry().with_resource(main["$id"], Resource.from_contents(main))
    return jsonschema.Draft202012Validator(drop_in, registry=registry)


def refs(node):
    """Every $ref in a schema."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


class DropInSchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if MISSING:
            return
        with open(SCHEMA) as f:
            cls.main = json.load(f)
        with open(DROP_IN_SCHEMA) as f:
            cls.schema = json.load(f)
        cls.validator = drop_in_validator(cls.main, cls.schema)

    def setUp(self):
        if MISSING:
            self.fail(MISSING)

    def check(self, drop_in):
        """`apsis-exportd check` on BASE including `drop_in` (a document or its text) from conf.d."""
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "conf.d"))
            with open(os.path.join(d, "conf.d/acme.secret"), "w") as f:
                f.write("acme-secret\n")
            with open(os.path.join(d, DROP_IN_NAME), "w") as f:
                f.write(drop_in if isinstance(drop_in, str) else yaml.safe_dump(drop_in, sort_keys=False))
            path = os.path.join(d, "exportd.yaml")
            with open(path, "w") as f:
                yaml.safe_dump({**BASE, "include": "conf.d/*.yaml"}, f, sort_keys=False)
            return subprocess.run([DAEMON, "check", "--config", path], capture_output=True, text=True, timeout=60)

    def errors(self, drop_in):
        doc = yaml.safe_load(drop_in if isinstance(drop_in, str) else yaml.safe_dump(drop_in, sort_keys=False))
        return [(tuple(e.absolute_path), e.message) for e in self.validator.iter_errors(doc)]

    def test_an_empty_accounts_key_in_the_main_file_is_valid_with_include_only(self):
        """With include:, the accounts may all live in drop-ins and the main file's `accounts:` stay
        empty: `check` and the main schema agree on it, and both refuse it without include:."""
        main_validator = jsonschema.Draft202012Validator(self.main)
        drop_in = {"accounts": {"main": BASE["accounts"]["main"]}}
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "conf.d"))
            with open(os.path.join(d, DROP_IN_NAME), "w") as f:
                yaml.safe_dump(drop_in, f, sort_keys=False)
            for include, accepted in ((True, True), (False, False)):
                doc = {**BASE, "accounts": None, "exports": None}
                if include:
                    doc["include"] = "conf.d/*.yaml"
                path = os.path.join(d, "exportd.yaml")
                with open(path, "w") as f:
                    yaml.safe_dump(doc, f, sort_keys=False)
                result = subprocess.run([DAEMON, "check", "--config", path], capture_output=True, text=True,
                                        timeout=60)
                with self.subTest(include=include):
                    self.assertEqual(result.returncode == 0, accepted, result.stderr)
                    self.assertEqual(main_validator.is_valid(doc), accepted)

    def test_schema_is_valid_draft_2020_12(self):
        self.assertEqual(self.schema["$schema"], "https://json-schema.org/draft/2020-12/schema")
        jsonschema.Draft202012Validator.check_schema(self.schema)
        for key in ("$id", "title", "description"):
            self.assertTrue(self.schema.get(key), key)
        self.assertEqual([f"properties/{name}" for name, sub in self.schema["properties"].items()
                          if "description" not in sub], [])

    def test_accounts_and_exports_are_the_main_schemas(self):
        # One source of truth: the drop-in describes no account or export of its own, it points at
        # exports.schema.json's $defs, by a path relative to its own (editors load it from the file
        # beside it, jsonschema by $id).
        self.assertEqual(sorted(set(refs(self.schema))), ["exports.schema.json#/$defs/account",
                                                          "exports.schema.json#/$defs/export",
                                                          "exports.schema.json#/$defs/name"])
        for ref in refs(self.schema):
            with self.subTest(ref):
                url, fragment = urljoin(self.schema["$id"], ref).split("#")
                self.assertEqual(url, self.main["$id"])
                # yaml-language-server ignores $id: it resolves the file name against where it loaded this one.
                self.assertEqual(os.path.join(os.path.dirname(DROP_IN_SCHEMA), ref.split("#")[0]), SCHEMA)
                self.assertIn(fragment.rsplit("/", 1)[1], self.main["$defs"])
        for section in ("accounts", "exports"):
            self.assertNotIn("properties", self.schema["properties"][section])
        self.assertEqual(self.schema["properties"]["accounts"]["propertyNames"],
                         {"$ref": "exports.schema.json#/$defs/name"})
        self.assertEqual(self.main["properties"]["accounts"]["propertyNames"], {"$ref": "#/$defs/name"})

    def test_top_level_keys_are_the_loaders(self):
        # What the loader keeps in a drop-in, learnt from `check`: every key the main file knows, in a
        # drop-in. A refused key is named where it stands (line 1, column 1 of the drop-in).
        allowed, refused = set(), set()
        for key in sorted(loader_keys("kTopKeys")):
            with self.subTest(key):
                result = self.check({key: MAIN_VALUES.get(key)})
                if result.returncode == 0:
                    allowed.add(key)
                    continue
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(f"{DROP_IN_NAME}:1:1: {key}: ", result.stderr)
                refused.add(key)
        self.assertTrue(refused, "the loader takes every key in a drop-in")
        self.assertEqual(set(self.schema["properties"]), allowed)
        self.assertIs(self.schema["additionalProperties"], False)
        self.assertEqual(set(key for key in MAIN_VALUES if key not in allowed), refused,
                         "DROP_IN_BAD tries the main file's keys of MAIN_VALUES: add the new one")

    def test_good_drop_ins_are_accepted_by_both(self):
        for what, drop_in in DROP_IN_GOOD:
            with self.subTest(what):
                self.assertEqual(self.errors(drop_in), [])
                result = self.check(drop_in)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn("; 1 drop-in)", result.stdout, "check read the drop-in")

    def test_bad_drop_ins_are_rejected_by_both_at_the_key(self):
        for what, drop_in, where, words, loader_says in DROP_IN_BAD:
            with self.subTest(what):
                errors = self.errors(drop_in)
                self.assertTrue(errors, "the schema accepts it")
                self.assertTrue(all(path[:len(at(where))] == at(where) for path, _ in errors),
                                f"errors outside {where or 'the top level'}: {errors}")
                self.assertTrue(any(path == at(where) and words in message for path, message in errors),
                                f"no error at {where!r} saying {words!r}: {errors}")
                result = self.check(drop_in)
                self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
                self.assertIn(f"{DROP_IN_NAME}:", result.stderr)
                self.assertIn(loader_says, result.stderr)


if __name__ == "__main__":
    unittest.main()
