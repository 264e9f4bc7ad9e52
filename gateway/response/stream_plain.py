"""The writer of a streamed CSV export's plain rows, built once per answer from its layout.

A plain row (no quote, ASCII, no stray CR: gateway.response.stream_select) is read by splitting on
commas, and every cell the filter writes back needs no quotes: the cells had none, and redact and
hash only give stars, the kept digits and ``hmac:`` + hex. So a plain row is written as one f-string
over its split cells, the masks called inline, the dropped columns left out:

    write(["1,Ann,0123,a@x", ...]) == [f"{c[0]},{c[1]},{change2(c[2])},{change3(c[3])}\r\n", ...]

That is the hot loop of an export: one comprehension in generated code instead of a Python loop with
a cell assignment per mask, an itemgetter and a join (the generated source holds only column numbers
and names bound here, never text from the answer). With one output column an empty cell is written
``""`` (else it would read as a blank line), as csv.writer does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

PlainWriter = Callable[[list[str]], list[str]]


def plain_writer(
    keep: Sequence[int], changes: Sequence[tuple[int, Callable[[str], str]]], terminator: str
) -> PlainWriter:
    namespace: dict[str, object] = {"term": terminator}
    cells = []
    for i in keep:
        expr = f"c[{int(i)}]"
        for n, (column, change) in enumerate(changes):
            if column == i:  # masks on one column apply in their order, as the buffered filter does
                namespace[f"change{n}"] = change
                expr = f"change{n}({expr})"
        cells.append("{" + expr + "}")
    source = (
        f'def write(lines):\n    return [f"{",".join(cells)}{{term}}" for line in lines for c in [line.split(",")]]\n'
    )
    exec(compile(source, "<csv plain rows>", "exec"), namespace)
    write: PlainWriter = namespace["write"]  # type: ignore[assignment]
    if len(keep) != 1:
        return write
    empty = '""' + terminator

    def write_one_column(lines: list[str]) -> list[str]:
        return [row if row != terminator else empty for row in write(lines)]

    return write_one_column
