"""Write docs/record.schema.json, the JSON schema of the result record, from the record model itself.

    .venv/bin/python scripts/gen_record_schema.py           # rewrite the file
    .venv/bin/python scripts/gen_record_schema.py --check   # exit 1 if the file is not what the model generates

tests/test_docs.py runs the check, so the committed schema is always the record's current one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# The one place that names the record model's module.
from pseval.ps_eval.record import PSEvalRecord

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "record.schema.json"


def render() -> str:
    """The record model's JSON schema as the committed file holds it (2-space indent, trailing newline)."""
    # Field order is the model's own (no sort_keys), so the file reads in the record's order.
    return json.dumps(PSEvalRecord.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schema file, or with --check compare it with the model's schema."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    ap.add_argument("--out", type=Path, default=SCHEMA_PATH, help=f"schema file (default {SCHEMA_PATH.name} in docs/)")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
        if current != text:
            print(f"{args.out} is not the record model's schema; run scripts/gen_record_schema.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
