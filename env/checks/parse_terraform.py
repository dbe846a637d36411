"""Parse every Terraform file under env/terraform with python-hcl2.

Prints a line per file that fails and a summary line; exit status 1 on any
failure or when there is nothing to parse.
"""

from __future__ import annotations

import sys

import envlib


def main() -> int:
    files = envlib.terraform_files()
    failed = 0
    blocks = 0
    for path in files:
        try:
            doc = envlib.parse_hcl_file(path)
            blocks += sum(len(v) for v in doc.values() if isinstance(v, list))
        except Exception as error:  # the parser raises several unrelated types
            failed += 1
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            print(f"FAIL {path.relative_to(envlib.REPO_ROOT)}: {first_line}")
    try:
        envlib.terraform()  # also catches duplicate resources or locals across files
    except AssertionError as error:
        failed += 1
        print(f"FAIL env/terraform: {error}")
    print(f"terraform: {len(files)} files parsed with python-hcl2, {blocks} top-level blocks, {failed} failure(s)")
    return 1 if failed or not files else 0


if __name__ == "__main__":
    sys.exit(main())
