"""The XLSX export's workbook template, as XlsxWriter makes it (issue 25 item 4).

The export writes its rows into a header-only workbook's sheets and rewrites three things in it
(each sheet's dimension and filter range, the workbook's filter names): the markers it looks for
must be there exactly once, whatever XlsxWriter release the lock file pins. A release that wrote
them otherwise fails here, not in an operator's download.
"""

from __future__ import annotations

import re

from engine.reporting.export_xlsx import _LAST, _WORKBOOK, HEADER, sheet_names, workbook_parts


def test_each_sheet_has_the_markers_the_export_rewrites() -> None:
    # Given the template of a two-sheet export
    parts = dict(workbook_parts(2))
    names = sheet_names(2, sheet_rows=2)

    # Then each sheet has its header row in bold (style 1), inline, frozen, one dimension and filter
    for number in (1, 2):
        sheet = parts[f"xl/worksheets/sheet{number}.xml"].decode()
        assert sheet.count(f'<dimension ref="A1:{_LAST}1"/>') == 1
        assert sheet.count(f'<autoFilter ref="A1:{_LAST}2"/>') == 1
        assert sheet.count("</sheetData>") == 1
        assert 'state="frozen"' in sheet and 'ySplit="1"' in sheet
        header = re.findall(r'<c r="[A-Z]+1" s="1" t="inlineStr"><is><t>([^<]*)</t></is></c>', sheet)
        assert header == list(HEADER)
        assert "sharedStrings" not in "".join(parts)
    # And the workbook names each sheet's filter range once, by the sheet's quoted name
    workbook = parts[_WORKBOOK].decode()
    for name in names:
        assert workbook.count(f"'{name}'!$A$1:${_LAST}$2<") == 1


def test_the_template_is_made_once_per_sheet_count() -> None:
    # Given two calls for one sheet count, then the parts are the same object (kept, not rebuilt)
    assert workbook_parts(1) is workbook_parts(1)
    assert [name for name, _ in workbook_parts(1)].count("xl/worksheets/sheet1.xml") == 1
