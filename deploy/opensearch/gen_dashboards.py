#!/usr/bin/env python3
"""Writes deploy/opensearch/dashboards.ndjson: the OpenSearch Dashboards saved objects.

    python3 deploy/opensearch/gen_dashboards.py            # rewrite dashboards.ndjson
    python3 deploy/opensearch/gen_dashboards.py --check    # exit 1 if the file is stale

Saved objects hold JSON inside JSON strings (visState, uiStateJSON, searchSourceJSON,
panelsJSON), which is error-prone to edit by hand: edit this file and regenerate instead.

The shape is what OpenSearch Dashboards 2.x exports (Stack Management -> Saved objects ->
Export): one object per line with a fixed `id`, `type`, `attributes`, `references` (the index
pattern by id, through `indexRefName`; dashboard panels through `panelRefName`) and
`migrationVersion`, so `POST /api/saved_objects/_import?overwrite=true` replaces the same
objects on every import instead of adding copies. The index pattern's field list is derived
from index-template.json, so the two cannot disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards.ndjson"
TEMPLATE = HERE / "index-template.json"

INDEX_PATTERN_ID = "waystream-points"
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"

# OpenSearch field type -> the Dashboards field type an index pattern records.
DASHBOARDS_TYPE = {
    "keyword": "string",
    "long": "number",
    "integer": "number",
    "double": "number",
    "float": "number",
    "date": "date",
    "geo_point": "geo_point",
}


def dumps(value: object) -> str:
    """Compact JSON, the way Dashboards writes the strings inside saved objects."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def search_source(query: str = "", with_index: bool = True) -> dict:
    source: dict = {"query": {"query": query, "language": "kuery"}, "filter": []}
    if with_index:
        source["indexRefName"] = INDEX_REF
    return {"searchSourceJSON": dumps(source)}


def index_pattern() -> dict:
    mappings = json.loads(TEMPLATE.read_text())["template"]["mappings"]["properties"]
    fields = [
        {"count": 0, "name": "_id", "type": "string", "esTypes": ["_id"], "scripted": False,
         "searchable": True, "aggregatable": True, "readFromDocValues": False},
        {"count": 0, "name": "_index", "type": "string", "esTypes": ["_index"], "scripted": False,
         "searchable": True, "aggregatable": True, "readFromDocValues": False},
        {"count": 0, "name": "_score", "type": "number", "scripted": False,
         "searchable": False, "aggregatable": False, "readFromDocValues": False},
        {"count": 0, "name": "_source", "type": "_source", "esTypes": ["_source"], "scripted": False,
         "searchable": False, "aggregatable": False, "readFromDocValues": False},
    ]
    for name, spec in sorted(mappings.items()):
        fields.append({
            "count": 0,
            "name": name,
            "type": DASHBOARDS_TYPE[spec["type"]],
            "esTypes": [spec["type"]],
            "scripted": False,
            "searchable": True,
            "aggregatable": True,
            "readFromDocValues": True,
        })
    return {
        "attributes": {
            "title": "waystream-points*",
            "timeFieldName": "ts",
            "fields": dumps(fields),
            "fieldFormatMap": dumps({
                "speed_mps": {"id": "number", "params": {"pattern": "0.0"}},
                "dist_m": {"id": "number", "params": {"pattern": "0.0"}},
                "heading_deg": {"id": "number", "params": {"pattern": "0"}},
            }),
        },
        "id": INDEX_PATTERN_ID,
        "migrationVersion": {"index-pattern": "7.6.0"},
        "references": [],
        "type": "index-pattern",
    }


def visualization(vis_id: str, title: str, description: str, vis: dict, query: str = "") -> dict:
    vis = {"title": title, **vis}
    ui_state = vis.pop("_uiState", {})
    return {
        "attributes": {
            "title": title,
            "description": description,
            "visState": dumps(vis),
            "uiStateJSON": dumps(ui_state),
            "version": 1,
            "kibanaSavedObjectMeta": search_source(query),
        },
        "id": vis_id,
        "migrationVersion": {"visualization": "7.10.0"},
        "references": [{"id": INDEX_PATTERN_ID, "name": INDEX_REF, "type": "index-pattern"}],
        "type": "visualization",
    }


def date_histogram(agg_id: str) -> dict:
    return {
        "id": agg_id, "enabled": True, "type": "date_histogram", "schema": "segment",
        "params": {"field": "ts", "useNormalizedOpenSearchInterval": True, "interval": "auto",
                   "drop_partials": False, "min_doc_count": 1, "extended_bounds": {}},
    }


def count(agg_id: str = "1") -> dict:
    return {"id": agg_id, "enabled": True, "type": "count", "schema": "metric", "params": {}}


def terms(agg_id: str, field: str, size: int, schema: str = "group", missing: str | None = None) -> dict:
    return {
        "id": agg_id, "enabled": True, "type": "terms", "schema": schema,
        "params": {"field": field, "size": size, "order": "desc", "orderBy": "1",
                   "otherBucket": True, "otherBucketLabel": "Other",
                   "missingBucket": missing is not None,
                   "missingBucketLabel": missing or "Missing"},
    }


def xy_params(chart: str, y_title: str, mode: str = "stacked") -> dict:
    """The vislib params of a line / vertical bar chart (as Dashboards 2.x saves them)."""
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom",
                          "show": True, "style": {}, "scale": {"type": "linear"},
                          "labels": {"show": True, "filter": True, "truncate": 100}, "title": {}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value",
                       "position": "left", "show": True, "style": {},
                       "scale": {"type": "linear", "mode": "normal"},
                       "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                       "title": {"text": y_title}}],
        "seriesParams": [{"show": True, "type": chart, "mode": mode,
                          "data": {"label": y_title, "id": "1"}, "valueAxis": "ValueAxis-1",
                          "drawLinesBetweenPoints": True, "lineWidth": 2, "showCircles": True,
                          "interpolate": "linear"}],
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
        "labels": {"show": False},
        "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
    }


def speed_map() -> dict:
    # Coordinate map (tile_map): geohash cells of `location`, each shaded by the mean speed of
    # its points ("Shaded Circle Markers" colours by the metric without scaling the circle).
    return visualization(
        "waystream-speed-map",
        "waystream: points by speed",
        "Geohash cells of the points, coloured by their mean speed (m/s).",
        {
            "type": "tile_map",
            "params": {
                "colorSchema": "Yellow to Red",
                "mapType": "Shaded Circle Markers",
                "isDesaturated": True,
                "addTooltip": True,
                "heatClusterSize": 1.5,
                "legendPosition": "bottomright",
                "mapZoom": 10,
                "mapCenter": [39.98, 116.32],
                "wms": {"enabled": False, "options": {"format": "image/png", "transparent": True}},
            },
            "aggs": [
                {"id": "1", "enabled": True, "type": "avg", "schema": "metric",
                 "params": {"field": "speed_mps", "customLabel": "mean speed (m/s)"}},
                {"id": "2", "enabled": True, "type": "geohash_grid", "schema": "segment",
                 "params": {"field": "location", "autoPrecision": True, "precision": 6,
                            "useGeocentroid": True, "isFilteredByCollar": True,
                            "mapZoom": 10, "mapCenter": [39.98, 116.32]}},
            ],
            "_uiState": {"mapZoom": 10, "mapCenter": [39.98, 116.32]},
        },
    )


def zone_events() -> dict:
    # A point flagged zone_exit lists the zones it is in *after* the change, so an exit to
    # outside every zone has no zone: those fall in the "(outside every zone)" bucket.
    return visualization(
        "waystream-zone-events",
        "waystream: zone enter / exit events",
        "Points flagged zone_enter or zone_exit over time, one series per zone the point is in "
        "(exits to outside every zone are counted as '(outside every zone)'); one chart for "
        "enters, one for exits.",
        {
            "type": "histogram",
            "params": xy_params("histogram", "events"),
            "aggs": [
                count(),
                date_histogram("2"),
                terms("3", "zones", 10, missing="(outside every zone)"),
                {"id": "4", "enabled": True, "type": "filters", "schema": "split",
                 "params": {"filters": [
                     {"input": {"query": "flags:zone_enter", "language": "kuery"}, "label": "enter"},
                     {"input": {"query": "flags:zone_exit", "language": "kuery"}, "label": "exit"},
                 ], "row": True}},
            ],
        },
        query="flags:zone_enter or flags:zone_exit",
    )


def speed_histogram() -> dict:
    return visualization(
        "waystream-speed-histogram",
        "waystream: speed histogram",
        "Points per 1 m/s speed bucket (speed_mps; points without a speed are left out).",
        {
            "type": "histogram",
            "params": xy_params("histogram", "points"),
            "aggs": [
                count(),
                {"id": "2", "enabled": True, "type": "histogram", "schema": "segment",
                 "params": {"field": "speed_mps", "interval": 1, "min_doc_count": False,
                            "has_extended_bounds": False, "extended_bounds": {"min": "", "max": ""},
                            "customLabel": "speed (m/s)"}},
            ],
        },
    )


def points_per_user() -> dict:
    return visualization(
        "waystream-points-per-user",
        "waystream: points per user over time",
        "Points per time bucket, one line per user (the 10 users with most points).",
        {
            "type": "line",
            "params": xy_params("line", "points", mode="normal"),
            "aggs": [count(), date_histogram("2"), terms("3", "user", 10)],
        },
    )


def implausible_speed() -> dict:
    return {
        "attributes": {
            "title": "waystream: implausible-speed points",
            "description": "Points the speed transform flagged implausible_speed.",
            "hits": 0,
            "columns": ["user", "trajectory", "seq", "ts", "speed_mps"],
            "sort": [["ts", "desc"]],
            "version": 1,
            "kibanaSavedObjectMeta": {"searchSourceJSON": dumps({
                "query": {"query": "flags:implausible_speed", "language": "kuery"},
                "filter": [],
                "highlightAll": True,
                "indexRefName": INDEX_REF,
            })},
        },
        "id": "waystream-implausible-speed",
        "migrationVersion": {"search": "7.9.3"},
        "references": [{"id": INDEX_PATTERN_ID, "name": INDEX_REF, "type": "index-pattern"}],
        "type": "search",
    }


def dashboard(panels: list[tuple[dict, tuple[int, int, int, int]]]) -> dict:
    """The dashboard; `panels` are (saved object, (x, y, w, h)) on the 48-column grid."""
    panels_json = []
    references = []
    for index, (obj, (x, y, w, h)) in enumerate(panels):
        panel_index = str(index + 1)
        panels_json.append({
            "version": "2.19.0",
            "gridData": {"x": x, "y": y, "w": w, "h": h, "i": panel_index},
            "panelIndex": panel_index,
            "embeddableConfig": {},
            "panelRefName": f"panel_{index}",
        })
        references.append({"id": obj["id"], "name": f"panel_{index}", "type": obj["type"]})
    return {
        "attributes": {
            "title": "waystream",
            "description": "Points from the waystream pipeline: where and how fast, zone events, "
                           "implausible speeds, points per user. The time picker filters on ts, "
                           "the GPS time (Geolife's is 2007-2012), hence the 20-year default.",
            "hits": 0,
            "panelsJSON": dumps(panels_json),
            "optionsJSON": dumps({"useMargins": True, "hidePanelTitles": False}),
            "timeRestore": True,
            "timeFrom": "now-20y",
            "timeTo": "now",
            "refreshInterval": {"pause": True, "value": 0},
            "version": 1,
            "kibanaSavedObjectMeta": search_source(with_index=False),
        },
        "id": "waystream-overview",
        "migrationVersion": {"dashboard": "7.9.3"},
        "references": references,
        "type": "dashboard",
    }


def objects() -> list[dict]:
    pattern = index_pattern()
    speed, zones, histogram, users, implausible = (
        speed_map(), zone_events(), speed_histogram(), points_per_user(), implausible_speed()
    )
    board = dashboard([
        (speed, (0, 0, 28, 22)),
        (histogram, (28, 0, 20, 11)),
        (users, (28, 11, 20, 11)),
        (zones, (0, 22, 48, 16)),
        (implausible, (0, 38, 48, 15)),
    ])
    # Referenced objects first, as an export lists them.
    return [pattern, speed, zones, histogram, users, implausible, board]


def render() -> str:
    return "".join(json.dumps(obj, sort_keys=True, ensure_ascii=False) + "\n" for obj in objects())


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run python3 {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
