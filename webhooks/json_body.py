"""Reading a public endpoint's JSON body: the rules live in sync/json_values.py, where the worker
uses them too (it decodes the raw messages the endpoint stored)."""

from sync.json_values import MAX_NESTING_DEPTH, loads_json_body

__all__ = ["MAX_NESTING_DEPTH", "loads_json_body"]
