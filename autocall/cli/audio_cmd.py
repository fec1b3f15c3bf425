"""``autocall audio check|convert|voices``: validate prompt files, convert audio for Asterisk, list TTS voices."""

from __future__ import annotations

import argparse
import sys

from autocall.errors import UserError

# Imports of autocall.audio happen inside the commands: every `autocall` run imports this module.


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "audio", help="check, convert and list audio for prompts",
        description="Validate prompt files (MP3 or WAV, at most 5 MB and 10 minutes), convert audio "
                    "to the forms Asterisk plays, list the text-to-speech voices.")
    actions = parser.add_subparsers(dest="audio_action", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="validate prompt files (a table; exit 1 if any is unusable)",
                               description="Validate audio files as prompts: format (judged by content), "
                                           "sample rate, channels, duration, size, and a verdict.")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(func=run_check)

    convert = actions.add_parser(
        "convert", help="convert audio to .sln16, .sln or 16 kHz WAV",
        description="Convert any audio ffmpeg decodes to mono 16-bit signed linear: OUT.sln16 (16 kHz), "
                    "OUT.sln (8 kHz), OUT.wav (16 kHz WAV), or OUT without an extension for both "
                    "OUT.sln16 and OUT.sln.")
    convert.add_argument("input", metavar="IN")
    convert.add_argument("output", metavar="OUT")
    convert.set_defaults(func=run_convert)

    voices = actions.add_parser("voices", help="list the text-to-speech voices",
                                description="List the voices a script can name in voice \"...\".")
    voices.add_argument("language", nargs="?", help="show only voices whose language starts with this")
    voices.set_defaults(func=run_voices)


def run_check(args: argparse.Namespace) -> int:
    from autocall.audio.errors import AudioError
    from autocall.audio.probe import assess, format_seconds, inspect_audio

    rows, failed = [], False
    for path in args.files:
        try:
            info = inspect_audio(path)
        except AudioError as exc:
            rows.append([path, "-", "-", "-", "-", "-", f"error: {exc.problem}"])
            failed = True
            continue
        verdict = assess(info)
        failed = failed or verdict.error is not None
        text = f"error: {verdict.error}" if verdict.error else (
            "warning: " + "; ".join(verdict.warnings) if verdict.warnings else "ok")
        rows.append([path, info.format, f"{info.sample_rate} Hz" if info.sample_rate else "-",
                     str(info.channels or "-"), format_seconds(info.duration_s) if info.duration_s else "-",
                     _size(info.size_bytes), text])
    _print_table(["file", "format", "rate", "channels", "duration", "size", "verdict"], rows)
    return 1 if failed else 0


def run_convert(args: argparse.Namespace) -> int:
    from autocall.audio.convert import convert_audio, outputs_for
    from autocall.audio.probe import NOT_AUDIO, inspect_audio, quality_warnings

    # Any audio ffmpeg decodes may be converted (that is how an Ogg file becomes a prompt),
    # and the prompt limits do not apply (converting is how a file gets under them).
    info = inspect_audio(args.input)
    if info.format in NOT_AUDIO:
        raise UserError(f"{args.input}: cannot convert: {info.description}")
    if info.problem:
        raise UserError(f"{args.input}: {info.problem}")
    for warning in quality_warnings(info):
        sys.stderr.write(f"autocall: warning: {args.input}: {warning}\n")
    outputs = outputs_for(args.output)
    convert_audio(args.input, outputs)
    print("wrote " + ", ".join(output.path for output in outputs))
    return 0


def run_voices(args: argparse.Namespace) -> int:
    from autocall.audio.voices import voice_table

    wanted = (args.language or "").lower()
    rows = [[voice.languages[0][0], voice.id, voice.name.replace("_", " "),
             " ".join(code for code, _ in voice.languages[1:])]
            for voice in voice_table() if any(code.startswith(wanted) for code, _ in voice.languages)]
    if not rows:
        raise UserError(f"no voice for a language starting with '{args.language}'; "
                        f"run 'autocall audio voices' to list them all")
    _print_table(["language", "id", "name", "also"], sorted(rows))
    return 0


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} B"


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    """A rich table on a terminal; plain aligned columns otherwise (for pipes and logs)."""
    if sys.stdout.isatty():
        from rich import box
        from rich.console import Console
        from rich.table import Table
        table = Table(*header, box=box.SIMPLE_HEAD)
        for row in rows:
            verdict = row[-1]
            style = "red" if verdict.startswith("error") else "yellow" if verdict.startswith("warning") else None
            table.add_row(*row, style=style)
        Console().print(table)
        return
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
