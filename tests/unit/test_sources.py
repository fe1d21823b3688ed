"""Tests of pgcontext.ingest.sources, files and records: finding and reading documents."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from pgcontext.errors import ConfigError
from pgcontext.ingest.sources import (
    JsonlFields,
    SourceDocument,
    SourceProblem,
    iter_documents,
    pydoc_topics,
)


def _read(*paths: str | Path, **options: Any) -> tuple[list[SourceDocument], list[SourceProblem]]:
    items = list(iter_documents(paths, **options))
    documents = [item for item in items if isinstance(item, SourceDocument)]
    problems = [item for item in items if isinstance(item, SourceProblem)]
    return documents, problems


def _jsonl(path: Path, *lines: Any) -> Path:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.txt"
    path.write_text("A good document.\n", encoding="utf-8")
    return path


class TestFiles:
    def test_text_file(self, good: Path) -> None:
        documents, problems = _read(good)
        assert problems == []
        assert documents == [
            SourceDocument(
                source=good.resolve().as_posix(),
                title="good",
                text="A good document.\n",
                metadata={"path": good.resolve().as_posix(), "format": "txt"},
            )
        ]

    def test_relative_path_is_resolved(self, good: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(good.parent)
        documents, _ = _read("good.txt")
        assert documents[0].source == good.resolve().as_posix()

    def test_markdown_title_and_fallback(self, tmp_path: Path) -> None:
        (tmp_path / "a.md").write_text("# Alpha\n\nbody\n", encoding="utf-8")
        (tmp_path / "b.markdown").write_text("no heading\n", encoding="utf-8")
        documents, _ = _read(tmp_path)
        assert [(d.title, d.metadata["format"]) for d in documents] == [
            ("Alpha", "md"),
            ("b", "md"),
        ]
        assert documents[0].text == "# Alpha\n\nbody\n"  # Markdown is kept, not rendered

    def test_html_is_converted(self, tmp_path: Path) -> None:
        (tmp_path / "page.html").write_text(
            "<title>Page</title><h1>Head</h1><p>Para</p>", encoding="utf-8"
        )
        (tmp_path / "untitled.htm").write_text("<p>Just this</p>", encoding="utf-8")
        documents, _ = _read(tmp_path)
        assert [(d.title, d.text, d.metadata["format"]) for d in documents] == [
            ("Page", "# Head\n\nPara", "html"),
            ("untitled", "Just this", "html"),
        ]

    def test_explicit_file_with_other_suffix_is_plain_text(self, tmp_path: Path) -> None:
        path = tmp_path / "notes.rst"
        path.write_text("Notes\n=====\n", encoding="utf-8")
        documents, problems = _read(path)
        assert problems == []
        assert documents[0].metadata["format"] == "txt"
        assert documents[0].title == "notes"

    def test_crlf_is_normalised(self, tmp_path: Path) -> None:
        path = tmp_path / "dos.txt"
        path.write_bytes(b"line one\r\nline two\r\n")
        assert _read(path)[0][0].text == "line one\nline two\n"

    def test_file_named_twice_is_read_once(self, good: Path) -> None:
        documents, problems = _read(good, good.parent, good)
        assert [d.source for d in documents] == [good.resolve().as_posix()]
        assert problems == []


class TestFolders:
    def test_walk_is_recursive_sorted_and_skips_hidden(self, tmp_path: Path) -> None:
        for name in ["b.txt", "a/z.md", "a/y.txt", ".hidden/x.txt", "a/.secret.txt", "c.py"]:
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"content of {name}\n", encoding="utf-8")
        documents, problems = _read(tmp_path)
        assert problems == []
        names = [Path(d.source).relative_to(tmp_path.resolve()).as_posix() for d in documents]
        assert names == ["a/y.txt", "a/z.md", "b.txt"]

    def test_folder_without_supported_files(self, tmp_path: Path, good: Path) -> None:
        empty = tmp_path / "images"
        empty.mkdir()
        (empty / "logo.png").write_bytes(b"\x89PNG")
        documents, problems = _read(empty, good)
        assert [d.title for d in documents] == ["good"]
        assert len(problems) == 1
        assert problems[0].source == empty.resolve().as_posix()
        assert problems[0].reason.startswith("no supported files")


class TestProblems:
    """Each bad input is reported, and the good input of the same call still comes through."""

    def _single_problem(self, bad: Path, good: Path, **options: Any) -> SourceProblem:
        documents, problems = _read(bad, good, **options)
        assert [d.title for d in documents] == ["good"]
        assert len(problems) == 1, problems
        return problems[0]

    def test_missing_path(self, tmp_path: Path, good: Path) -> None:
        problem = self._single_problem(tmp_path / "nope.txt", good)
        assert problem == SourceProblem(
            (tmp_path / "nope.txt").resolve().as_posix(), "no such file or directory"
        )

    @pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() == 0,
        reason="root reads files whatever their permissions",
    )
    def test_unreadable_file(self, tmp_path: Path, good: Path) -> None:
        locked = tmp_path / "locked.txt"
        locked.write_text("secret", encoding="utf-8")
        locked.chmod(0)
        try:
            problem = self._single_problem(locked, good)
        finally:
            locked.chmod(0o600)
        assert problem.reason.startswith("permission denied")

    def test_permission_error_while_reading(
        self, tmp_path: Path, good: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Runs as root too: the error is raised where reading the file would fail.
        locked = tmp_path / "locked.txt"
        locked.write_text("secret", encoding="utf-8")
        real_open = os.open

        def refuse(path: Any, *args: Any, **kwargs: Any) -> Any:
            if Path(path).name == "locked.txt":
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
        problem = self._single_problem(locked, good)
        assert problem.reason.startswith("permission denied")

    def test_binary_file(self, tmp_path: Path, good: Path) -> None:
        binary = tmp_path / "blob.txt"
        binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
        problem = self._single_problem(binary, good)
        assert problem.reason == "looks like a binary file (contains NUL bytes)"

    def test_invalid_utf8(self, tmp_path: Path, good: Path) -> None:
        latin = tmp_path / "latin1.txt"
        latin.write_bytes("café".encode("latin-1"))
        problem = self._single_problem(latin, good)
        assert problem.reason == (
            "not valid UTF-8 (byte 0xe9 at offset 3); convert the file to UTF-8"
        )

    @pytest.mark.parametrize(
        ("name", "content"),
        [("empty.txt", ""), ("blank.md", " \n\t\n"), ("nothing.html", "<script>x</script>")],
    )
    def test_empty_document(self, tmp_path: Path, good: Path, name: str, content: str) -> None:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        problem = self._single_problem(path, good)
        assert problem.reason == "empty document, nothing to index"

    def test_file_over_max_bytes(self, tmp_path: Path, good: Path) -> None:
        big = tmp_path / "big.txt"
        big.write_text("x" * 101, encoding="utf-8")
        problem = self._single_problem(big, good, max_bytes=100)
        assert problem.reason == (
            "file is 101 bytes, over the limit of 100; split it or raise max_bytes"
        )
        assert problem.parameter == "max_bytes"  # the CLI names its flag


FIFO_REASON = "not a regular file (FIFO); to read a stream, pipe it to stdin with -"


class TestLinksAndSpecialFiles:
    """Only regular files are read: every other kind of entry is reported, and the run goes on."""

    def _loop(self, folder: Path) -> Path:
        link = folder / "loop.txt"
        link.symlink_to("loop.txt")  # ln -s loop.txt loop.txt: the link names itself
        return link

    def test_symlink_loop_in_a_folder(self, tmp_path: Path) -> None:
        (tmp_path / "good.txt").write_text("A good document.\n", encoding="utf-8")
        link = self._loop(tmp_path)
        (tmp_path / "a.md").symlink_to("b.md")
        (tmp_path / "b.md").symlink_to("a.md")
        documents, problems = _read(tmp_path)
        assert [d.title for d in documents] == ["good"]
        assert [p.source for p in problems] == [
            (tmp_path / "a.md").as_posix(),
            (tmp_path / "b.md").as_posix(),
            link.as_posix(),
        ]
        assert all(p.reason.startswith("symlink loop") for p in problems)

    def test_symlink_loop_named_directly(self, tmp_path: Path, good: Path) -> None:
        link = self._loop(tmp_path)
        documents, problems = _read(link, good)
        assert [d.title for d in documents] == ["good"]
        assert [(p.source, p.reason.split(":")[0]) for p in problems] == [
            (link.as_posix(), "symlink loop")
        ]

    def test_dangling_symlink_is_reported(self, tmp_path: Path) -> None:
        folder = tmp_path / "docs"
        folder.mkdir()
        (folder / "gone.md").symlink_to("missing.md")
        (folder / "kept.txt").write_text("still here\n", encoding="utf-8")
        (folder / "other.txt").symlink_to(folder / "kept.txt")  # a link that resolves: read
        documents, problems = _read(folder, folder / "gone.md")
        assert [d.source for d in documents] == [
            (folder / "kept.txt").as_posix(),
            (folder / "other.txt").as_posix(),
        ]
        reason = "dangling symlink -> missing.md: the target does not exist; fix or remove the link"
        assert problems == [SourceProblem((folder / "gone.md").as_posix(), reason)] * 2

    def _read_guarded(
        self, *paths: Path, fifo: Path
    ) -> tuple[list[SourceDocument], list[SourceProblem]]:
        """_read, failing instead of hanging if the reader opens the FIFO and waits for it."""
        result: list[tuple[list[SourceDocument], list[SourceProblem]]] = []
        reader = threading.Thread(target=lambda: result.append(_read(*paths)), daemon=True)
        reader.start()
        reader.join(timeout=20)
        if reader.is_alive():
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # a writer releases the reader
            os.close(fd)
            reader.join(timeout=20)
            pytest.fail("the reader opened the FIFO and waited for a writer")
        return result[0]

    def test_fifo_is_refused_without_opening_it(self, tmp_path: Path, good: Path) -> None:
        folder = tmp_path / "docs"
        folder.mkdir()
        fifo = folder / "pipe.txt"
        os.mkfifo(fifo)
        documents, problems = self._read_guarded(folder, fifo, good, fifo=fifo)
        assert [d.title for d in documents] == ["good"]
        assert problems == [SourceProblem(fifo.as_posix(), FIFO_REASON)] * 2

    @pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="needs /dev/fd")
    def test_process_substitution_pipe_is_refused_as_a_fifo(self) -> None:
        read_end, write_end = os.pipe()  # what <(command) gives: /dev/fd/N, a link to pipe:[N]
        try:
            path = Path(f"/dev/fd/{read_end}")
            result: list[Any] = []
            reader = threading.Thread(target=lambda: result.append(_read(path)), daemon=True)
            reader.start()
            reader.join(timeout=20)
        finally:
            os.close(write_end)  # releases a reader that was waiting on the pipe
            reader.join(timeout=20)
            os.close(read_end)
        assert result == [([], [SourceProblem(path.as_posix(), FIFO_REASON)])]

    def test_file_name_that_is_not_utf8_is_reported_in_utf8(self, tmp_path: Path) -> None:
        (tmp_path / "ok.txt").write_text("fine\n", encoding="utf-8")
        bad = os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")
        with open(bad, "wb") as file:
            file.write(b"text\n")
        documents, problems = _read(tmp_path, os.fsdecode(bad))
        assert [d.title for d in documents] == ["ok"]
        shown = f"{tmp_path.as_posix()}/caf\\xe9.txt"
        at = len(f"{tmp_path.as_posix()}/caf")
        reason = f"file name is not valid UTF-8 (byte 0xe9 at character {at}); rename it to UTF-8"
        assert problems == [SourceProblem(shown, reason)] * 2
        json.dumps([p.source for p in problems], ensure_ascii=False).encode("utf-8")

    def test_socket_and_device_are_refused(self, tmp_path: Path, good: Path) -> None:
        path = tmp_path / "s.txt"
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
            documents, problems = _read(path, Path(os.devnull), good)
        assert [d.title for d in documents] == ["good"]
        assert [(p.source, p.reason.split(";")[0]) for p in problems] == [
            (path.as_posix(), "not a regular file (socket)"),
            (os.devnull, "not a regular file (character device)"),
        ]

    def test_a_file_that_became_a_fifo_is_not_opened_for_reading(self, tmp_path: Path) -> None:
        from pgcontext.ingest import files

        fifo = tmp_path / "late.txt"
        os.mkfifo(fifo)
        result: list[Any] = []
        reader = threading.Thread(
            target=lambda: result.append(files.read_bytes(fifo, 100)), daemon=True
        )
        reader.start()
        reader.join(timeout=20)
        if reader.is_alive():
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            pytest.fail("read_bytes opened the FIFO and waited for a writer")
        assert result == [SourceProblem(fifo.as_posix(), files.not_regular(fifo.stat().st_mode))]


class TestJsonl:
    def test_records_with_auto_fields(self, tmp_path: Path) -> None:
        path = _jsonl(
            tmp_path / "docs.jsonl",
            {"_id": "a", "title": "Alpha", "text": "First body.", "lang": "en"},
            {"id": 7, "content": "Second body."},
            {"body": "Third body.", "metadata": {"lang": "de", "n": 1}, "lang": "fr"},
        )
        documents, problems = _read(path)
        assert problems == []
        origin = path.resolve().as_posix()
        assert [(d.source, d.title, d.text, d.metadata) for d in documents] == [
            ("a", "Alpha", "Alpha\n\nFirst body.", {"lang": "en"}),
            ("7", None, "Second body.", {}),
            (f"{origin}:3", None, "Third body.", {"lang": "fr", "n": 1}),
        ]

    def test_title_not_repeated_when_text_starts_with_it(self, tmp_path: Path) -> None:
        path = _jsonl(tmp_path / "t.jsonl", {"id": "x", "title": "Intro", "text": "Intro\nbody"})
        assert _read(path)[0][0].text == "Intro\nbody"

    def test_named_fields(self, tmp_path: Path) -> None:
        path = _jsonl(
            tmp_path / "named.jsonl",
            {"key": "k1", "heading": "H", "passage": "P", "text": "ignored, stays metadata"},
        )
        fields = JsonlFields(id="key", title="heading", text="passage")
        documents, problems = _read(path, fields=fields)
        assert problems == []
        assert (documents[0].source, documents[0].title, documents[0].text) == ("k1", "H", "H\n\nP")
        assert documents[0].metadata == {"text": "ignored, stays metadata"}

    def test_json_array_and_object(self, tmp_path: Path) -> None:
        (tmp_path / "many.json").write_text(
            json.dumps([{"id": "m1", "text": "one"}, {"text": "two"}]), encoding="utf-8"
        )
        (tmp_path / "one.json").write_text(json.dumps({"text": "single"}), encoding="utf-8")
        documents, problems = _read(tmp_path)
        assert problems == []
        many, one = (tmp_path / "many.json").resolve(), (tmp_path / "one.json").resolve()
        assert [d.source for d in documents] == ["m1", f"{many.as_posix()}[1]", one.as_posix()]

    def test_every_bad_line_is_a_problem_and_good_lines_survive(self, tmp_path: Path) -> None:
        path = _jsonl(
            tmp_path / "mixed.jsonl",
            {"id": "ok1", "text": "fine"},
            '{"id": "broken", "text": ',
            "[1, 2]",
            {"id": "notext", "title": "T"},
            {"id": "blank", "text": "   "},
            {"id": "ok1", "text": "again"},
            {"id": "nan", "text": "x", "score": "NaN"},
            '{"id": "realnan", "text": "x", "score": NaN}',
            {"id": None, "text": "x"},
            {"id": "ok2", "text": 5},
            "",
            {"id": "ok3", "text": "also fine"},
        )
        documents, problems = _read(path)
        assert [d.source for d in documents] == ["ok1", "nan", "ok3"]
        origin = path.resolve().as_posix()
        by_line = {p.source.removeprefix(f"{origin}:"): p.reason for p in problems}
        assert by_line["2"] == "line 2: invalid JSON: Expecting value (column 26)"
        assert by_line["3"] == "record is a JSON array, not an object"
        assert by_line["4"] == (
            "no text field: looked for text, content, body; name one with fields.text"
        )
        assert by_line["5"] == "empty document, nothing to index"
        assert by_line["6"].startswith("duplicate id 'ok1', first used at")
        assert by_line["8"] == "line 8: invalid JSON: NaN is not valid JSON"
        assert by_line["9"].startswith("id field 'id' is missing")
        assert by_line["10"] == "text field 'text' is a JSON number, not a string"
        assert len(problems) == 8

    def test_named_text_field_missing(self, tmp_path: Path) -> None:
        path = _jsonl(tmp_path / "x.jsonl", {"text": "t"})
        problems = _read(path, fields=JsonlFields(text="passage"))[1]
        assert problems[0].reason == (
            "no text field: looked for passage; name one with fields.text"
        )
        assert problems[0].parameter == "fields.text"

    def test_file_without_records(self, tmp_path: Path, good: Path) -> None:
        path = tmp_path / "none.jsonl"
        path.write_text("\n\n", encoding="utf-8")
        documents, problems = _read(path, good)
        assert len(documents) == 1
        assert problems == [
            SourceProblem(path.resolve().as_posix(), "empty file, no records to index")
        ]

    def test_invalid_json_file(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.json"
        path.write_text("{oops", encoding="utf-8")
        problems = _read(path)[1]
        assert problems[0].reason == (
            "invalid JSON: Expecting property name enclosed in double quotes (line 1 column 2)"
        )

    def test_metadata_stays_json_serialisable(self, tmp_path: Path) -> None:
        path = _jsonl(tmp_path / "m.jsonl", {"text": "t", "tags": ["a"], "n": 1.5, "x": None})
        json.dumps(_read(path)[0][0].metadata, allow_nan=False)

    def test_integers_beyond_64_bits_stay_exact(self, tmp_path: Path) -> None:
        big = 2**70
        path = _jsonl(
            tmp_path / "big.jsonl",
            f'{{"id": {big}, "text": "one", "n": {-big - 1}}}',
            f'{{"id": {big + 1}, "text": "two", "n": 12}}',
            '{"id": 7, "text": "three", "x": 0.00001234567890123456789,'
            ' "y": 12345678901234567890.5}',
        )
        documents, problems = _read(path)
        assert problems == []
        assert [d.source for d in documents] == [str(big), str(big + 1), "7"]
        assert documents[0].metadata == {"n": -big - 1}
        assert documents[2].metadata == {"x": 1.234567890123456789e-05, "y": 1.2345678901234567e19}

    def test_a_number_too_large_for_a_double_is_refused_with_its_line(self, tmp_path: Path) -> None:
        path = _jsonl(
            tmp_path / "inf.jsonl",
            {"id": "a", "text": "fine"},
            '{"id": "b", "text": "x", "score": 1e400}',
            '{"id": "c", "text": "x", "score": [-1E+400]}',
            '{"id": "d", "text": "x", "n": ' + "9" * 5000 + "}",
            {"id": "e", "text": "also fine"},
        )
        documents, problems = _read(path)
        assert [d.source for d in documents] == ["a", "e"]
        origin = path.resolve().as_posix()
        by_line = {p.source.removeprefix(f"{origin}:"): p.reason for p in problems}
        assert by_line["2"] == (
            "line 2: invalid JSON: number 1e400 is too large for a double (it would be"
            " Infinity); write it as a string"
        )
        assert "number -1E+400 is too large" in by_line["3"]
        assert by_line["4"] == "line 4: invalid JSON: an integer of 5000 digits is too long"


class TestStdin:
    def _stdin(self, monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))

    def test_plain_text(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._stdin(monkeypatch, b"piped text\r\n")
        assert _read("-") == (
            [SourceDocument("stdin", None, "piped text\n", {"format": "txt"})],
            [],
        )

    def test_jsonl(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._stdin(monkeypatch, b'{"id": "s1", "text": "one"}\nnot json\n')
        documents, problems = _read("-")
        assert [d.source for d in documents] == ["s1"]
        assert problems[0].source == "stdin:2"

    def test_binary(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._stdin(monkeypatch, b"\x00\x01")
        assert _read("-")[1] == [
            SourceProblem("stdin", "looks like a binary file (contains NUL bytes)")
        ]

    def test_empty_input_is_a_problem(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for data in (b"", b" \n\t\n"):
            self._stdin(monkeypatch, data)
            assert _read("-") == ([], [SourceProblem("stdin", "empty input, nothing to index")])

    def test_closed_stdin_is_a_problem(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sys, "stdin", None)  # what Python sets when fd 0 is closed
        assert _read("-") == (
            [],
            [SourceProblem("stdin", "standard input is closed; pipe the text in with -")],
        )

    def test_stdin_named_twice_is_refused_before_reading(
        self, monkeypatch: pytest.MonkeyPatch, good: Path
    ) -> None:
        self._stdin(monkeypatch, b"zebra twice")
        with pytest.raises(ConfigError, match=r"stdin \('-'\) is named 2 times"):
            iter_documents(["-", good, "-"])
        assert sys.stdin.read() == "zebra twice"  # nothing was read


class TestPydocTopics:
    def test_topics(self) -> None:
        documents = list(pydoc_topics())
        topics = [d.title or "" for d in documents]
        assert len(documents) > 50
        assert topics == sorted(topics)
        assert all(d.source == f"pydoc:{d.title}" for d in documents)
        assert all(d.text.strip() for d in documents)
        assert documents[0].metadata == {"topic": documents[0].title, "format": "pydoc"}


def test_jsonl_is_streamed_so_only_a_line_is_held_to_the_size_limit(tmp_path: Path) -> None:
    records = [{"id": f"r{i}", "text": f"record number {i}"} for i in range(50)]
    records.append({"id": "huge", "text": "x" * 500})
    path = _jsonl(tmp_path / "big.jsonl", *records, {"id": "after", "text": "still read"})
    assert path.stat().st_size > 400
    documents, problems = _read(path, max_bytes=400)
    assert len(documents) == 51 and documents[-1].source == "after"
    (problem,) = problems
    assert problem.source.endswith("big.jsonl:51") and "over the limit of 400" in problem.reason


def test_a_bad_byte_on_a_later_jsonl_line_spoils_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9"}\n'
        b'{"id": "c", "text": "ok too"}\n'
    )
    documents, problems = _read(path)
    assert [d.source for d in documents] == ["a", "c"]
    assert problems[0].source.endswith("mixed.jsonl:2") and "UTF-8" in problems[0].reason


def _within(seconds: float, work: Any) -> Any:
    """`work()` in a thread; the test fails if it takes longer than `seconds`."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still reading after {seconds} s")
    return result[0]


def test_an_over_long_jsonl_line_is_skipped_without_holding_it(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "sparse.jsonl"
    with path.open("wb") as file:
        file.write(b'{"id": "before", "text": "read"}\n')
        file.truncate(200_000_000)  # a 200 MB line of NUL bytes, a hole on disk
        file.seek(0, os.SEEK_END)
        file.write(b'\n{"id": "after", "text": "still read"}\n')
    tracemalloc.start()
    try:
        documents, problems = _within(60, lambda: _read(path, max_bytes=1000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [d.source for d in documents] == ["before", "after"]
    (problem,) = problems
    assert problem.source.endswith("sparse.jsonl:2")
    assert "is 199999968 bytes, over the limit of 1000" in problem.reason
    assert peak < 20_000_000, f"{peak:,} bytes held at once"


def test_a_huge_sparse_jsonl_file_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "sparse.jsonl"
    with path.open("wb") as file:
        file.truncate(20 * 2**30)  # 20 GB of NUL bytes, no line end
    documents, problems = _within(10, lambda: _read(path, max_bytes=1000))
    assert documents == []
    assert [(Path(p.source).name, p.reason) for p in problems] == [
        ("sparse.jsonl", "looks like a binary file (contains NUL bytes)")
    ]


@pytest.mark.parametrize("given", ["", "  ", "\t"])
def test_an_empty_path_is_refused_before_anything_is_read(given: str) -> None:
    with pytest.raises(ConfigError, match="an empty path was given"):
        iter_documents([given])


def test_a_tilde_of_an_unknown_user_is_a_problem_and_the_rest_goes_on(good: Path) -> None:
    documents, problems = _read("~pgcontext-no-such-user/x.txt", good)
    assert documents
    assert problems == [
        SourceProblem("~pgcontext-no-such-user/x.txt", "no such user for ~ in this path")
    ]


def test_a_folder_nested_deeper_than_the_recursion_limit_is_walked(tmp_path: Path) -> None:
    deep = tmp_path / "deep"
    levels = sys.getrecursionlimit() + 100
    folder = deep
    deep.mkdir()
    for _ in range(levels):  # one by one: mkdir(parents=True) recurses itself
        folder = folder / "d"
        folder.mkdir()
    (folder / "bottom.txt").write_text("at the bottom", encoding="utf-8")
    (deep / "top.txt").write_text("at the top", encoding="utf-8")
    try:
        documents, problems = _read(deep)
    finally:  # bottom-up: shutil.rmtree (and pytest's clean-up) recurses per level
        (folder / "bottom.txt").unlink()
        while folder != deep:
            folder.rmdir()
            folder = folder.parent
    assert problems == []
    assert sorted(d.title or "" for d in documents) == ["bottom", "top"]
