"""The OpenSearch artifacts: index template, ISM policies, Dashboards saved objects.

No OpenSearch server runs here (none installs offline; docs/deploy.md): these check the files
against the documented formats and against each other: the mapping against the output
document, every field the saved objects use against the mapping, every reference against the
objects in the file, the index names Firehose writes against the template and ISM patterns.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from cfnlint.decode import decode_str

REPO = Path(__file__).resolve().parents[2]
OPENSEARCH = REPO / "deploy" / "opensearch"
INDEX_TEMPLATE = json.loads((OPENSEARCH / "index-template.json").read_text())
MAPPINGS = INDEX_TEMPLATE["template"]["mappings"]
PROPERTIES = MAPPINGS["properties"]
ISM_DAILY = json.loads((OPENSEARCH / "ism-policy.json").read_text())
ISM_ROLLOVER = json.loads((OPENSEARCH / "ism-policy-rollover.json").read_text())
NDJSON = OPENSEARCH / "dashboards.ndjson"

# The output document (host/src/document.rs, README "The output document") and the type each
# field is mapped to.
EXPECTED = {
    "user": "keyword",
    "trajectory": "keyword",
    "seq": "long",  # a u32: up to 4294967295, past integer's 2147483647
    "ts": "date",
    "location": "geo_point",
    "alt_m": "double",
    "dist_m": "double",
    "speed_mps": "double",
    "heading_deg": "double",
    "zones": "keyword",
    "flags": "keyword",
    "point_id": "keyword",
}

# strict_date_optional_time, as the host writes it: UTC, whole seconds or milliseconds.
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")


# --- index template ------------------------------------------------------------------------


def test_template_matches_every_point_index():
    assert INDEX_TEMPLATE["index_patterns"] == ["waystream-points*"]
    for name in ("waystream-points", "waystream-points-2026-12-04", "waystream-points-000001"):
        assert any(fnmatchcase(name, p) for p in INDEX_TEMPLATE["index_patterns"])


def test_mapping_is_strict_and_exact():
    assert MAPPINGS["dynamic"] == "strict"
    assert {name: spec["type"] for name, spec in PROPERTIES.items()} == EXPECTED
    assert PROPERTIES["ts"]["format"] == "strict_date_optional_time"


def test_settings():
    settings = INDEX_TEMPLATE["template"]["settings"]
    assert settings["number_of_shards"] == 1
    assert settings["auto_expand_replicas"] == "0-1"
    assert settings["plugins.index_state_management.rollover_alias"] == "waystream-points"


def accepts(field: str, value) -> bool:
    """Whether OpenSearch would index `value` under the template's mapping of `field`."""
    kind = PROPERTIES[field]["type"]
    if value is None:
        return True
    values = value if isinstance(value, list) else [value]
    for v in values:
        if kind == "keyword" and not isinstance(v, str):
            return False
        if kind == "long" and not (isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63):
            return False
        if kind == "double" and not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)):
            return False
        if kind == "date":
            if not (isinstance(v, str) and TS.match(v)):
                return False
            datetime.fromisoformat(v.replace("Z", "+00:00"))
        if kind == "geo_point":
            if not (isinstance(v, dict) and set(v) == {"lat", "lon"}
                    and -90 <= v["lat"] <= 90 and -180 <= v["lon"] <= 180):
                return False
    return True


def check_document(doc: dict) -> None:
    # dynamic: strict refuses a field the mapping lacks.
    assert set(doc) <= set(PROPERTIES), set(doc) - set(PROPERTIES)
    for field, value in doc.items():
        assert accepts(field, value), (field, value)


def documented_example() -> dict:
    """The example document in the document module's docs (contract/src/document/mod.rs)."""
    source = (REPO / "contract" / "src" / "document" / "mod.rs").read_text()
    lines = [line.removeprefix("//!").strip() for line in source.splitlines() if line.startswith("//!")]
    text = "\n".join(lines)
    match = re.search(r"```json\n(.*?)\n```", text, re.S)
    if not match:
        pytest.fail("contract/src/document/mod.rs has no ```json example")
    return json.loads(match.group(1).replace("\n", ""))


def test_the_documented_document_fits():
    doc = documented_example()
    assert set(doc) == set(EXPECTED)
    check_document(doc)


@pytest.mark.parametrize(
    "doc",
    [
        # seq at u32::MAX, milliseconds, nulls, several zones and flags, user bits.
        {"user": "021", "trajectory": "t", "seq": 4294967295, "ts": "2008-10-23T02:53:04.007Z",
         "location": {"lat": -89.9, "lon": 179.99}, "alt_m": None, "zones": ["a", "b"],
         "dist_m": None, "speed_mps": None, "heading_deg": None,
         "flags": ["implausible_speed", "zone_enter", "user_16"], "point_id": "8bf7c9319eca9ece"},
        {"user": "000", "trajectory": "20000101000000", "seq": 0, "ts": "2000-01-01T00:00:00Z",
         "location": {"lat": 39.98, "lon": 116.32}, "alt_m": -12.5, "zones": [],
         "dist_m": 0.0, "speed_mps": 343.2, "heading_deg": 359.9, "flags": [],
         "point_id": "0000000000000000"},
    ],
)
def test_edge_documents_fit(doc):
    check_document(doc)


def test_integer_would_not_hold_seq():
    # Why seq is long: a u32 seq beyond 2**31 - 1 would be refused by an integer field.
    assert 4294967295 > 2**31 - 1


# --- ISM policies --------------------------------------------------------------------------


def firehose_index_names() -> list[str]:
    """The index names Firehose writes, from the template's IndexName + IndexRotationPeriod."""
    template, _ = decode_str((REPO / "deploy" / "waystream.yaml").read_text())
    config = template["Resources"]["DeliveryStream"]["Properties"][
        "AmazonopensearchserviceDestinationConfiguration"
    ]
    assert config["IndexRotationPeriod"] == "OneDay"
    return [f"{config['IndexName']}-{day}" for day in ("2008-10-23", "2026-12-04", "2030-01-31")]


def ism_patterns(policy: dict) -> list[str]:
    return [p for t in policy["policy"]["ism_template"] for p in t["index_patterns"]]


def test_daily_policy_deletes_after_30_days_of_index_age():
    states = {s["name"]: s for s in ISM_DAILY["policy"]["states"]}
    assert ISM_DAILY["policy"]["default_state"] == "hot"
    (transition,) = states["hot"]["transitions"]
    assert transition == {"state_name": "delete", "conditions": {"min_index_age": "30d"}}
    assert states["delete"]["actions"] == [{"delete": {}}]


def test_daily_policy_covers_firehose_indices_only():
    for name in firehose_index_names():
        assert any(fnmatchcase(name, p) for p in INDEX_TEMPLATE["index_patterns"]), name
        assert any(fnmatchcase(name, p) for p in ism_patterns(ISM_DAILY)), name
        assert not any(fnmatchcase(name, p) for p in ism_patterns(ISM_ROLLOVER)), name


def test_rollover_policy_covers_direct_indices_only():
    for name in ("waystream-points-000001", "waystream-points-000042"):
        assert any(fnmatchcase(name, p) for p in ism_patterns(ISM_ROLLOVER)), name
        assert not any(fnmatchcase(name, p) for p in ism_patterns(ISM_DAILY)), name
    states = {s["name"]: s for s in ISM_ROLLOVER["policy"]["states"]}
    assert "rollover" in states["hot"]["actions"][0]
    assert states["hot"]["transitions"][0]["conditions"] == {"min_rollover_age": "30d"}
    assert states["delete"]["actions"] == [{"delete": {}}]


# --- Dashboards saved objects --------------------------------------------------------------


def saved_objects() -> list[dict]:
    objects = []
    for number, line in enumerate(NDJSON.read_text().splitlines(), 1):
        assert line.strip(), f"empty line {number}"
        objects.append(json.loads(line))
    return objects


OBJECTS = saved_objects()
BY_ID = {(o["type"], o["id"]): o for o in OBJECTS}
INDEX_PATTERN = BY_ID[("index-pattern", "waystream-points")]
META_FIELDS = {"_id", "_index", "_score", "_source"}


def test_every_object_has_a_fixed_unique_id():
    for obj in OBJECTS:
        assert isinstance(obj.get("id"), str) and obj["id"], obj
        assert obj["type"] in {"index-pattern", "visualization", "search", "dashboard"}
        assert "attributes" in obj and "references" in obj and "migrationVersion" in obj
    assert len(BY_ID) == len(OBJECTS)


def test_references_resolve_within_the_file():
    for obj in OBJECTS:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in BY_ID, (obj["id"], ref)


def test_index_pattern():
    attributes = INDEX_PATTERN["attributes"]
    assert attributes["title"] == "waystream-points*"
    assert attributes["timeFieldName"] == "ts" and PROPERTIES["ts"]["type"] == "date"
    fields = {f["name"]: f for f in json.loads(attributes["fields"])}
    assert set(fields) - META_FIELDS == set(PROPERTIES)
    for name, spec in PROPERTIES.items():
        assert fields[name]["esTypes"] == [spec["type"]]
    for name in json.loads(attributes["fieldFormatMap"]):
        assert name in PROPERTIES


def kuery_fields(query: str) -> set[str]:
    """Field names in a KQL / Lucene query string (`field:value`)."""
    return set(re.findall(r"([A-Za-z_][\w.]*)\s*:", query))


def used_fields(obj: dict) -> set[str]:
    """Every field a visualization or saved search reads."""
    attributes = obj["attributes"]
    fields: set[str] = set()
    source = json.loads(attributes.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}"))
    fields |= kuery_fields(source.get("query", {}).get("query", ""))
    for f in source.get("filter", []):
        if f.get("meta", {}).get("key"):
            fields.add(f["meta"]["key"])
    if "visState" in attributes:
        vis = json.loads(attributes["visState"])
        for agg in vis.get("aggs", []):
            params = agg.get("params", {})
            if "field" in params:
                fields.add(params["field"])
            for f in params.get("filters", []):
                fields |= kuery_fields(f["input"]["query"])
    fields |= set(attributes.get("columns", []))
    fields |= {s[0] for s in attributes.get("sort", [])}
    return fields


def test_every_used_field_is_mapped():
    for obj in OBJECTS:
        if obj["type"] in {"visualization", "search"}:
            unknown = used_fields(obj) - set(PROPERTIES)
            assert not unknown, (obj["id"], unknown)


def test_visualizations_and_searches_use_the_index_pattern():
    for obj in OBJECTS:
        if obj["type"] not in {"visualization", "search"}:
            continue
        source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        names = {r["name"]: r for r in obj["references"]}
        ref = names[source["indexRefName"]]
        assert (ref["type"], ref["id"]) == ("index-pattern", "waystream-points")


def vis_state(vis_id: str) -> dict:
    return json.loads(BY_ID[("visualization", vis_id)]["attributes"]["visState"])


def aggs_by_type(vis: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for agg in vis["aggs"]:
        out.setdefault(agg["type"], []).append(agg)
    return out


def test_speed_map():
    vis = vis_state("waystream-speed-map")
    assert vis["type"] == "tile_map"
    aggs = aggs_by_type(vis)
    assert aggs["geohash_grid"][0]["params"]["field"] == "location"
    metric = [a for a in vis["aggs"] if a["schema"] == "metric"]
    assert [(a["type"], a["params"]["field"]) for a in metric] == [("avg", "speed_mps")]
    assert PROPERTIES["location"]["type"] == "geo_point"


def test_zone_events():
    obj = BY_ID[("visualization", "waystream-zone-events")]
    vis = json.loads(obj["attributes"]["visState"])
    aggs = aggs_by_type(vis)
    assert aggs["date_histogram"][0]["params"]["field"] == "ts"
    assert aggs["terms"][0]["params"]["field"] == "zones"
    source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert source["query"] == {"query": "flags:zone_enter or flags:zone_exit", "language": "kuery"}


def test_speed_histogram():
    aggs = aggs_by_type(vis_state("waystream-speed-histogram"))
    assert aggs["histogram"][0]["params"]["field"] == "speed_mps"


def test_points_per_user():
    aggs = aggs_by_type(vis_state("waystream-points-per-user"))
    assert aggs["date_histogram"][0]["params"]["field"] == "ts"
    assert aggs["terms"][0]["params"]["field"] == "user"


def test_implausible_speed_search():
    attributes = BY_ID[("search", "waystream-implausible-speed")]["attributes"]
    assert attributes["columns"] == ["user", "trajectory", "seq", "ts", "speed_mps"]
    source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert source["query"] == {"query": "flags:implausible_speed", "language": "kuery"}


def test_dashboard_panels():
    board = BY_ID[("dashboard", "waystream-overview")]
    panels = json.loads(board["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in board["references"]}
    assert len(panels) == len(refs) == 5
    for panel in panels:
        ref = refs[panel["panelRefName"]]
        assert (ref["type"], ref["id"]) in BY_ID
    assert {r["id"] for r in refs.values()} == {
        "waystream-speed-map", "waystream-zone-events", "waystream-speed-histogram",
        "waystream-points-per-user", "waystream-implausible-speed",
    }
    assert board["attributes"]["timeRestore"] is True


def test_ndjson_is_what_the_generator_writes():
    result = subprocess.run(
        [sys.executable, str(OPENSEARCH / "gen_dashboards.py"), "--check"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
