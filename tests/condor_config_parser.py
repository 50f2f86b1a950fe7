"""A parser for the subset of HTCondor's configuration language the program generates:
`NAME = value` (case-insensitive names, later wins), comments, `include`/`use` lines and
`$(NAME)` references. Tests read the generated config through it instead of grepping."""

import re

_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")
_DIRECTIVE = re.compile(r"^(include|use)\b\s*(.*)$", re.IGNORECASE)


class ConfigSyntaxError(ValueError):
    pass


def parse(*texts: str) -> dict:
    """Parse config files in order; returns {NAME_UPPER: raw value} plus '@directives'."""
    values: dict = {"@directives": []}
    for text in texts:
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                raise ConfigSyntaxError(f"line {number}: continuation lines are not generated: {line!r}")
            directive = _DIRECTIVE.match(stripped)
            if directive and ":" in directive.group(2):
                values["@directives"].append((directive.group(1).lower(), directive.group(2)))
                continue
            assign = _ASSIGN.match(stripped)
            if not assign:
                raise ConfigSyntaxError(f"line {number}: not an assignment: {line!r}")
            values[assign.group(1).upper()] = assign.group(2).strip()
    return values


def expand(values: dict, name: str, depth: int = 0) -> str:
    """The value of NAME with $(OTHER) references expanded ($ENV(...) left as is)."""
    if depth > 20:
        raise ConfigSyntaxError(f"reference loop at {name}")
    raw = values.get(name.upper(), "")
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: expand(values, m.group(1), depth + 1), raw)


def as_list(value: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", value) if item]
