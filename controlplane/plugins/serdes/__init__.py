"""Serdes: convert stored files between CSV, JSON and Ion (Kestra's record format)."""

from controlplane.plugins.serdes.converters import CsvToIon, IonToCsv, IonToJson, JsonToIon

PLUGINS = (CsvToIon, IonToCsv, JsonToIon, IonToJson)

__all__ = ["PLUGINS"]
