"""Tables that fit the terminal without cutting what matters.

A column is either a *key* column (ids, actions, symbols, quantities, prices, money, statuses:
shown in full, never wrapped or cut) or a *text* column (names, times, reasons, descriptions:
wrapped at spaces). When a table is wider than the terminal only its text columns give up width,
the widest first, down to their longest word or ``min_width``. *Detail* columns (long free text
such as a decision's reason) shrink first; when the others would have to shrink too, the details
move below the table instead, one wrapped paragraph per row labelled with the row's first cell.
If that is not enough the gap between columns narrows to one space, then text columns fold words
longer than their ``min_width``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

MISSING = "—"


@dataclass(frozen=True, slots=True)
class Column:
    """One column. ``header`` may hold a line break ("Realized\\nP&L") to stay narrow."""

    header: str
    key: bool = True
    right: bool = False
    style: str = ""
    min_width: int = 10  # a text column: narrowest it is squeezed to (its longest word wins)
    detail: bool = False  # a text column that moves below the table when space is short


def key(header: str, *, right: bool = False, style: str = "") -> Column:
    return Column(header, key=True, right=right, style=style)


def text(header: str, *, min_width: int = 10, detail: bool = False, style: str = "") -> Column:
    return Column(header, key=False, min_width=min_width, detail=detail, style=style)


def _lines(cell: Text) -> list[str]:
    return cell.plain.splitlines() or [""]


def _widest_line(cell: Text) -> int:
    return max(cell_len(line) for line in _lines(cell))


def _widest_word(cell: Text) -> int:
    return max((cell_len(w) for line in _lines(cell) for w in line.split()), default=0)


@dataclass(frozen=True, slots=True)
class _Layout:
    gap: int  # spaces between columns
    inline: tuple[int, ...]  # indexes of the columns in the table; the others go below it
    fold: bool = False  # text columns may fold a word that is wider than they are
    whole: bool = False  # only detail columns may shrink


class FitTable:
    """A Rich renderable: a table laid out for the width it is printed at."""

    def __init__(
        self,
        *columns: Column,
        title: str | None = None,
        show_header: bool = True,
        lines: bool = False,
    ) -> None:
        self.columns = columns
        self.title = title
        self.show_header = show_header
        self.lines = lines
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: str | Text | None) -> None:
        """A row; plain strings are never read as markup, None shows as "—"."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([_cell(c) for c in cells])

    # -- layout ------------------------------------------------------------------------------
    def _cells(self, i: int) -> Iterator[Text]:
        if self.show_header:
            yield Text(self.columns[i].header)
        for row in self.rows:
            yield row[i]

    def _natural(self, i: int) -> int:
        return max(_widest_line(c) for c in self._cells(i))

    def _lower(self, i: int, layout: _Layout) -> int:
        """The narrowest a column may get in ``layout``: a key column (and in a ``whole`` layout
        any but a detail column) not at all; a text column to its ``min_width``, and unless the
        layout folds words, not below its longest word (never wider than it needs)."""
        col = self.columns[i]
        natural = self._natural(i)
        if col.key or (layout.whole and not col.detail):
            return natural
        word = 0 if layout.fold else max(_widest_word(c) for c in self._cells(i))
        return min(natural, max(col.min_width, word))

    def _layouts(self) -> list[_Layout]:
        """From the roomiest to the tightest: every column whole but the details, details below
        and every other column whole, text columns wrapped at words, one-space gaps, long words
        folded."""
        every = tuple(range(len(self.columns)))
        inline = tuple(i for i in every if not self.columns[i].detail)
        out = [_Layout(2, every, whole=True)]
        if inline != every:
            out.append(_Layout(2, inline, whole=True))
        out += [_Layout(2, inline), _Layout(1, inline), _Layout(1, inline, fold=True)]
        return out

    def _choose(self, width: int) -> _Layout:
        layouts = self._layouts()
        for layout in layouts:
            need = sum(self._lower(i, layout) for i in layout.inline) + layout.gap * (
                len(layout.inline) - 1
            )
            if need <= width:
                return layout
        return layouts[-1]  # too narrow for any: Rich squeezes what is left

    def _widths(self, layout: _Layout, width: int) -> dict[int, int]:
        """Widths of the text columns that must shrink: the widest give way first."""
        text_cols = [i for i in layout.inline if not self.columns[i].key]
        fixed = sum(self._natural(i) for i in layout.inline if self.columns[i].key)
        room = width - fixed - layout.gap * (len(layout.inline) - 1)
        natural = {i: self._natural(i) for i in text_cols}
        if sum(natural.values()) <= room:
            return {}
        lower = {i: self._lower(i, layout) for i in text_cols}
        level = max(natural.values(), default=0)
        while level > 0 and sum(max(lower[i], min(natural[i], level)) for i in text_cols) > room:
            level -= 1
        return {i: max(lower[i], min(natural[i], level)) for i in text_cols}

    def _table(self, layout: _Layout, width: int) -> Table:
        table = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, layout.gap - 1, 0, 0),
            show_header=self.show_header,
            header_style="bold",
            show_lines=self.lines,
        )
        widths = self._widths(layout, width)
        for i in layout.inline:
            col = self.columns[i]
            table.add_column(
                col.header,
                justify="right" if col.right else "left",
                style=col.style or None,
                no_wrap=col.key,
                overflow="ellipsis" if col.key else "fold",  # a cut key shows it was cut
                width=widths.get(i),
            )
        for row in self.rows:
            table.add_row(*(row[i] for i in layout.inline))
        return table

    def _details(self, layout: _Layout) -> Iterator[tuple[str, Table]]:
        """Each detail column below the table: its header, then a paragraph per row."""
        for i, col in enumerate(self.columns):
            if i in layout.inline:
                continue
            rows = [(row[0], row[i]) for row in self.rows if row[i].plain not in ("", MISSING)]
            if not rows:
                continue
            grid = Table.grid(padding=(0, 2))
            grid.add_column(no_wrap=True)
            grid.add_column(overflow="fold")
            for label, value in rows:
                grid.add_row(label, value)
            yield col.header, grid

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        layout = self._choose(width)
        if self.title:  # above the table, wrapped at the terminal's width, not the table's
            yield Text(self.title, style="bold")
        yield self._table(layout, width)
        for header, grid in self._details(layout):
            yield Text("")
            yield Text(header, style="bold")
            yield grid


def _cell(value: str | Text | None) -> Text:
    if isinstance(value, Text):
        return value if value.plain else Text(MISSING, style=value.style)
    return Text(MISSING if value is None or value == "" else str(value))
