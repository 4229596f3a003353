"""``grade batch export``: a batch's grades as a file Canvas's or Moodle's gradebook import takes as it is.

Canvas (Grades > Import): the instructor exports the course's gradebook first and passes
it as ``--roster``. We write the same student columns in Canvas's order (Student, ID, SIS
User ID, SIS Login ID, Section), one assignment column (the roster's own ``Lab 2
(12345)`` header when it has the assignment, so the import updates it; otherwise a new
title, which the import offers to create), Canvas's ``Points Possible`` row, and numbers
only: blank where there is no grade. Every roster student is kept, in the roster's order.

Moodle (Grades > Import > CSV file): an identifier column (``Email address``, or ``ID
number`` with ``--moodle-id idnumber``), one column for the grade item, and optionally
(``--feedback``) the item's feedback column with a short summary. The roster (Moodle's
own grade export) is optional: with it, the grade item's existing header is reused and
every student is listed; without it, each submission's email is the identifier.

Students are matched on identifiers only, never on names (two students can share a
name): a submission's email(s) against the SIS Login ID or email address, its SID against
the SIS User ID or ID number, and its id (the file or folder name) against any of them.
Every submission that matches no student, matches ambiguously, or was not graded, and
every student without a submission, is listed on the way out, never silently dropped.

The file is UTF-8 without a byte-order mark, comma-separated, quoted only where needed,
and reads back through Python's ``csv`` module to exactly the values written. Names are
written exactly as the roster has them (no spreadsheet-formula escaping: these files are
for import, and the import matches on the identifiers, not on what a cell shows).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.errors import ExportError
from grader.files import write_bytes_atomic
from grader.frontends.batch.gradebook import Row, format_points
from grader.frontends.batch.outdir import read_manifest, read_rows

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # as Canvas writes it in its own exports
CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.*\S)\s+\((?P<id>\d+)\)$")
MOODLE_IDENTIFIERS = {"email": "Email address", "idnumber": "ID number"}
MOODLE_ITEM = re.compile(r"^(?:[^:]+:\s*)?(?P<title>.*?)\s*\((?:Real|Percentage|Letter)\)$")
DELIMITERS = ",;\t|"


@dataclass(frozen=True)
class Student:
    """One roster line: its cells by header, who it is, and the identifiers a submission may carry."""

    cells: dict[str, str]
    display: str
    logins: frozenset[str]  # SIS Login ID, email address, username (casefolded)
    sids: frozenset[str]  # SIS User ID, ID number


@dataclass(frozen=True)
class Roster:
    header: tuple[str, ...]
    students: tuple[Student, ...]
    points: dict[str, str]  # Canvas's Points Possible row, by header


@dataclass(frozen=True)
class Matching:
    """Which row graded which student, and everything that did not pair up."""

    grades: dict[int, Row]  # student index -> row
    unmatched: tuple[Row, ...]
    ambiguous: tuple[tuple[Row, tuple[int, ...]], ...]  # a row that names more students than it has submitters
    conflicts: dict[int, tuple[Row, ...]]  # student index -> the rows that all claim them


def normalized(text: str) -> str:
    """``Lab 2``, ``lab2`` and ``LAB-2`` alike: lower-case letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def raw_values(text: str) -> list[str]:
    """A batch cell's values as written: group members are joined by ``; ``."""
    return [part.strip() for part in text.split(";") if part.strip()]


def split_values(text: str) -> list[str]:
    """The same values casefolded, for matching."""
    return [value.casefold() for value in raw_values(text)]


def read_roster(path: Path, kind: str) -> Roster:
    """A Canvas or Moodle gradebook export, in whichever delimiter it was saved with."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise ExportError(f"{path}: cannot read the roster ({err.strerror})") from err
    except UnicodeDecodeError as err:
        raise ExportError(f"{path}: is not UTF-8; export it again as UTF-8 (Canvas and Moodle both offer it)") from err
    first = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first.count)
    records = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(c.strip() for c in r)]
    if not records:
        raise ExportError(f"{path}: the roster is empty")
    header = tuple(cell.strip() for cell in records[0])
    wanted = ("Student", "ID") if kind == "canvas" else ()
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ExportError(
            f"{path}: no {', '.join(missing)} column; pass the gradebook Canvas exports (Grades > Export)"
        )
    students, points = [], {}
    for record in records[1:]:
        cells = dict(zip(header, (c.strip() for c in record + [""] * (len(header) - len(record)))))
        if cells.get("Student", "").strip() == CANVAS_POINTS_ROW.strip() or cells.get("Student") == "Points Possible":
            points = cells
            continue
        students.append(make_student(cells, kind))
    identifiers = [s for s in students if s.logins or s.sids]
    if students and not identifiers:
        columns = "SIS Login ID or SIS User ID" if kind == "canvas" else "Email address or ID number"
        raise ExportError(f"{path}: no student has an {columns}, so no submission can be matched to them")
    return Roster(header, tuple(students), points)


def make_student(cells: dict[str, str], kind: str) -> Student:
    if kind == "canvas":
        display, logins, sids = (
            cells.get("Student", ""),
            [cells.get("SIS Login ID", "")],
            [cells.get("SIS User ID", "")],
        )
    else:
        display = " ".join(
            v for v in (cells.get("First name", ""), cells.get("Last name", cells.get("Surname", ""))) if v
        )
        logins = [cells.get("Email address", ""), cells.get("Username", "")]
        sids = [cells.get("ID number", "")]
    return Student(
        cells=cells,
        display=display or "(no name)",
        logins=frozenset(v.casefold() for v in logins if v),
        sids=frozenset(v.casefold() for v in sids if v),
    )


def candidates(row: Row, student: Student) -> bool:
    """Whether the submission's identifiers name this student."""
    emails, sids, own = set(split_values(row.email)), set(split_values(row.sid)), row.id.casefold()
    locals_ = {login.split("@", 1)[0] for login in student.logins}
    return bool(emails & student.logins or sids & student.sids or own in student.logins | student.sids | locals_)


def match(rows: Sequence[Row], students: Sequence[Student]) -> Matching:
    """Pair rows with students; a row names as many students as it has submitters, and a student one row."""
    unmatched, ambiguous, claims = [], [], {}
    for row in rows:
        found = tuple(i for i, student in enumerate(students) if candidates(row, student))
        submitters = max(len(split_values(row.email)), len(split_values(row.sid)), 1)
        if not found:
            unmatched.append(row)
        elif len(found) > submitters:
            ambiguous.append((row, found))
        else:
            for i in found:
                claims.setdefault(i, []).append(row)
    return Matching(
        grades={i: claimed[0] for i, claimed in claims.items() if len(claimed) == 1},
        unmatched=tuple(unmatched),
        ambiguous=tuple(ambiguous),
        conflicts={i: tuple(claimed) for i, claimed in claims.items() if len(claimed) > 1},
    )


def short_title(manifest: dict) -> str:
    """``Lab 2`` from ``Lab 2: gradients of ...``: the title before its first colon."""
    return manifest["title"].split(":", 1)[0].strip() or manifest["assignment"]


def find_column(header: Sequence[str], names: Sequence[str], pattern: re.Pattern) -> str | None:
    """The roster's column for the assignment (``Lab 2 (123)``, ``Assignment: Lab 2 (Real)``), if any."""
    wanted = {normalized(n) for n in names if normalized(n)}
    found = [h for h in header if (m := pattern.match(h)) and normalized(m["title"]) in wanted]
    if len(found) > 1:
        listed = ", ".join(found)
        raise ExportError(f"the roster has several columns for this assignment ({listed}); name one with --assignment")
    return found[0] if found else None


def same_number(text: str, value: float) -> bool:
    try:
        return abs(float(text) - value) < 1e-9
    except ValueError:
        return False


def csv_text(records: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(records)
    return buffer.getvalue()


def grade_cell(matching: Matching, index: int) -> str:
    row = matching.grades.get(index)
    return format_points(row.total) if row is not None else ""


def render_canvas(roster: Roster, matching: Matching, column: str, max_score: float) -> str:
    records = [[*CANVAS_COLUMNS, column], [CANVAS_POINTS_ROW, "", "", "", "", format_points(max_score)]]
    for i, student in enumerate(roster.students):
        records.append([*(student.cells.get(name, "") for name in CANVAS_COLUMNS), grade_cell(matching, i)])
    return csv_text(records)


def feedback_text(row: Row) -> str:
    """One line: the total and, for each part short of full marks, its label and what went wrong."""
    if row.total is None:
        return ""
    parts = [
        f"{cell.label}: {format_points(cell.score)}/{format_points(cell.points)} ({cell.status.replace('_', ' ')})"
        for cell in row.equations
        if cell.score < cell.points - 1e-9
    ]
    summary = f"{format_points(row.total)}/{format_points(row.max_score)}"
    return summary + (": " + "; ".join(parts) if parts else ": full marks")


def render_moodle(
    roster: Roster | None, rows: Sequence[Row], matching: Matching | None, column: str, identifier: str, feedback: bool
) -> str:
    id_header = MOODLE_IDENTIFIERS[identifier]
    feedback_column = re.sub(r"\((Real|Percentage|Letter)\)$", "(Feedback)", column)
    if feedback_column == column:
        feedback_column = f"{column} (Feedback)"
    records = [[id_header, column, *([feedback_column] if feedback else [])]]
    if roster is not None and matching is not None:
        pairs = [(s.cells.get(id_header, ""), matching.grades.get(i)) for i, s in enumerate(roster.students)]
        pairs = [(key, row) for key, row in pairs if key]
    else:  # Moodle matches emails case-sensitively: write them as the submission gave them
        pairs = [(email, row) for row in rows for email in raw_values(row.email)]
    for key, row in pairs:
        grade = format_points(row.total) if row is not None else ""
        records.append([key, grade, *([feedback_text(row) if row is not None else ""] if feedback else [])])
    return csv_text(records)


def describe_row(row: Row) -> str:
    who = ", ".join(f"{k} {v}" for k, v in (("name", row.name), ("email", row.email), ("sid", row.sid)) if v)
    return f"{row.id} ({who})" if who else row.id


def listing(roster: Roster | None, rows: Sequence[Row], matching: Matching | None, id_header: str = "") -> list[str]:
    """Every student and submission that did not become a grade, and why."""
    lines = []
    if matching is not None and roster is not None:
        if id_header:
            blank = [s for s in roster.students if not s.cells.get(id_header)]
            if blank:
                lines.append(f"{len(blank)} student(s) with no {id_header} in the roster (not in the file):")
                lines += [f"  {s.display}" for s in blank]
        absent = [s for i, s in enumerate(roster.students) if i not in matching.grades and i not in matching.conflicts]
        if absent:
            lines.append(f"{len(absent)} student(s) without a submission (blank in the file):")
            lines += [f"  {s.display} [{', '.join(sorted(s.logins | s.sids)) or 'no identifier'}]" for s in absent]
        for i, claimed in matching.conflicts.items():
            student = roster.students[i]
            lines.append(f"{student.display}: claimed by several submissions, left blank; grade by hand:")
            lines += [f"  {describe_row(r)}: {format_points(r.total) or 'not graded'}" for r in claimed]
        if matching.unmatched:
            lines.append(f"{len(matching.unmatched)} submission(s) matching no student (not in the file):")
            lines += [f"  {describe_row(r)}: {format_points(r.total) or 'not graded'}" for r in matching.unmatched]
        for row, found in matching.ambiguous:
            names = "; ".join(roster.students[i].display for i in found)
            lines.append(f"submission {describe_row(row)} matches several students ({names}); not in the file")
        graded = matching.grades.items()
    else:
        without = [r for r in rows if not raw_values(r.email)]
        if without:
            lines.append(f"{len(without)} submission(s) without an email (not in the file; pass --roster to match):")
            lines += [f"  {describe_row(r)}" for r in without]
        graded = enumerate(r for r in rows if raw_values(r.email))
    ungraded = [row for _, row in graded if row.total is None]
    if ungraded:
        lines.append(f"{len(ungraded)} submission(s) not graded (blank in the file; see the batch summary):")
        lines += [f"  {describe_row(r)}: {r.status.value} {r.note}".rstrip() for r in ungraded]
    return lines


def export_parser():
    from grader.frontends.cli import Parser  # here, not at the top: grader.frontends.cli imports the batch

    parser = Parser(prog="grade batch export", description="Write a batch's grades for a gradebook import.")
    parser.add_argument("outdir", metavar="OUTDIR", help="the -o folder of a finished `grade batch` (or merge)")
    parser.add_argument("--to", required=True, choices=("canvas", "moodle"), help="the gradebook to import into")
    parser.add_argument("--roster", help="the gradebook exported from Canvas (required) or Moodle (optional)")
    parser.add_argument("-o", "--output", required=True, help="the CSV file to write")
    parser.add_argument("--assignment", help="the assignment's name in the gradebook (default: the rubric's title)")
    parser.add_argument("--moodle-id", choices=tuple(MOODLE_IDENTIFIERS), default="email", help="Moodle's identifier")
    parser.add_argument("--feedback", action="store_true", help="Moodle: add a feedback column with a short summary")
    return parser


def run_export(argv: Sequence[str]) -> int:
    args = export_parser().parse_args(argv)
    outdir = Path(args.outdir)
    manifest = read_manifest(outdir)
    rows = read_rows(outdir, manifest)
    names = [args.assignment] if args.assignment else [short_title(manifest), manifest["assignment"]]
    new_title = args.assignment or short_title(manifest)
    if args.to == "canvas" and not args.roster:
        raise ExportError("--to canvas needs --roster: the gradebook Canvas exports (Grades > Export)")
    roster = read_roster(Path(args.roster), args.to) if args.roster else None
    matching = match(rows, roster.students) if roster is not None else None
    notes, id_header = [], ""
    if args.to == "canvas":
        found = find_column(roster.header, names, CANVAS_ASSIGNMENT)
        column = found or new_title
        possible = roster.points.get(column, "")
        if possible and not same_number(possible, manifest["max_score"]):
            notes.append(
                f"note: Canvas has {column} out of {possible} points; these grades are out of "
                f"{format_points(manifest['max_score'])} (change the assignment's points, or scale before importing)"
            )
        text = render_canvas(roster, matching, column, manifest["max_score"])
    else:
        found = find_column(roster.header, names, MOODLE_ITEM) if roster is not None else None
        column, id_header = found or new_title, MOODLE_IDENTIFIERS[args.moodle_id] if roster is not None else ""
        text = render_moodle(roster, rows, matching, column, args.moodle_id, args.feedback)
    write_bytes_atomic(Path(args.output), text.encode("utf-8"))
    written = len(matching.grades) if matching is not None else sum(bool(raw_values(r.email)) for r in rows)
    state = "existing" if found else "new"
    print(f"Wrote {args.output}: {written} student(s) paired with a submission, in the {state} column {column!r}.")
    for line in notes + listing(roster, rows, matching, id_header):
        print(line)
    return 0
